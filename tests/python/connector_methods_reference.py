# PyTorch references for the objectives with trainable connectors (test_connector_methods.cpp):
# ofd, reviewkd and fitnet written from mdistiller's formulas (shared/KD_LOSSES.md), in
# functional form on the C++ modules' parameter values. Each function takes several cases
# at once ("<case>.<key>" entries; "cases" holds their count) and returns per case the loss,
# its gradient w.r.t. every student tap ("<case>.grad.<tap>") and w.r.t. every module
# parameter ("<case>.grad.p.<name>"). Connector/ABF/regressor BatchNorms use batch
# statistics (train mode), as during training.
import math

import torch
import torch.nn.functional as F

from reference_io import main


def cases(d):
    return range(int(d["cases"].item()))


def taps(d, k, prefix):
    """The entries <k>.<prefix>0, <k>.<prefix>1, ... in order."""
    out = []
    while "%d.%s%d" % (k, prefix, len(out)) in d:
        out.append(d["%d.%s%d" % (k, prefix, len(out))])
    return out


def params(d, k):
    p = "%d.p." % k
    return {key[len(p):]: v.clone().requires_grad_(True) for key, v in d.items() if key.startswith(p)}


def bn(x, p, name):
    return F.batch_norm(x, None, None, p[name + ".weight"], p[name + ".bias"], training=True, eps=1e-5)


def grads(k, loss, named):
    """loss and its gradient w.r.t. every tensor of `named` (zeros where it does not reach)."""
    keys = list(named)
    g = torch.autograd.grad(loss, [named[n] for n in keys], allow_unused=True)
    out = {"%d.loss" % k: loss.detach()}
    for n, gi in zip(keys, g):
        out["%d.grad.%s" % (k, n)] = torch.zeros_like(named[n]) if gi is None else gi
    return out


def align(*lists):
    n = min(len(l) for l in lists)
    return [l[len(l) - n:] for l in lists]


# --- OFD (mdistiller distillers/OFD.py) ---

def ofd_margin(weight, bias):
    """E[x | x < 0] for x ~ N(bias, weight^2) per channel, or -3|weight| where Phi(-m/s) <= 0.001,
    computed in float64 and stored as float32 as the reference does (|weight| = 0: min(bias, 0))."""
    margin = []
    for s, m in zip(weight.tolist(), bias.tolist()):
        s = abs(s)
        if s == 0:
            margin.append(min(m, 0.0))
            continue
        cdf = 0.5 * math.erfc((m / s) / math.sqrt(2.0))  # Phi(-m/s), as scipy's norm.cdf
        if cdf > 0.001:
            margin.append(-s * math.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi) / cdf + m)
        else:
            margin.append(-3 * s)
    return torch.tensor(margin, dtype=torch.float32).to(torch.float64).view(1, -1, 1, 1)


def ofd_feat_loss(source, target, margin):
    loss = ((source - margin) ** 2 * ((source > margin) & (target <= margin)).double()
            + (source - target) ** 2 * ((source > target) & (target > margin) & (target <= 0)).double()
            + (source - target) ** 2 * (target > 0).double())
    return torch.abs(loss).mean(dim=0).sum()


def ofd(d):
    out = {}
    for k in cases(d):
        # <k>.s<i> / <k>.t<i>: preact_feats[1 + i] of student / teacher; <k>.tw<i>, <k>.tb<i>: the
        # teacher BN (weight, bias) before t<i>.
        s_all = [x.clone().requires_grad_(True) for x in taps(d, k, "s")]
        t_all, tw, tb = taps(d, k, "t"), taps(d, k, "tw"), taps(d, k, "tb")
        p = params(d, k)
        s, t, tw_used, tb_used = align(s_all, t_all, tw, tb)
        n = len(s)
        loss = 0
        for i in range(n):
            margin = ofd_margin(tw_used[i], tb_used[i])
            out["%d.margin%d" % (k, i)] = margin
            x = F.conv2d(s[i], p["connectors.%d.0.weight" % i])
            x = bn(x, p, "connectors.%d.1" % i)
            target = F.adaptive_avg_pool2d(t[i], x.shape[-2:]).detach()
            loss = loss + ofd_feat_loss(x, target, margin) / 2 ** (n - i - 1)
        named = {"s%d" % i: x for i, x in enumerate(s_all)}
        named.update({"p." + name: v for name, v in p.items()})
        out.update(grads(k, loss, named))
    return out


# --- ReviewKD (mdistiller distillers/ReviewKD.py) ---

def abf(p, i, x, y, shape, out_shape):
    n, _, h, w = x.shape
    x = bn(F.conv2d(x, p["abfs.%d.conv1.0.weight" % i]), p, "abfs.%d.conv1.1" % i)
    if y is not None:
        y = F.interpolate(y, shape, mode="nearest")
        z = torch.sigmoid(F.conv2d(torch.cat([x, y], dim=1), p["abfs.%d.att_conv.0.weight" % i],
                                   p["abfs.%d.att_conv.0.bias" % i]))
        x = x * z[:, 0].view(n, 1, h, w) + y * z[:, 1].view(n, 1, h, w)
    if tuple(x.shape[-2:]) != tuple(out_shape):
        x = F.interpolate(x, out_shape, mode="nearest")
    y = bn(F.conv2d(x, p["abfs.%d.conv2.0.weight" % i], padding=1), p, "abfs.%d.conv2.1" % i)
    return y, x


def hcl_loss(fstudent, fteacher):
    loss_all = 0.0
    for fs, ft in zip(fstudent, fteacher):
        n, c, h, w = fs.shape
        loss = F.mse_loss(fs, ft, reduction="mean")
        cnt = 1.0
        tot = 1.0
        for l in [4, 2, 1]:
            if l >= h:
                continue
            tmpfs = F.adaptive_avg_pool2d(fs, (l, l))
            tmpft = F.adaptive_avg_pool2d(ft, (l, l))
            cnt /= 2.0
            loss += F.mse_loss(tmpfs, tmpft, reduction="mean") * cnt
            tot += cnt
        loss = loss / tot
        loss_all = loss_all + loss
    return loss_all


def reviewkd(d):
    out = {}
    for k in cases(d):
        # <k>.s<i>: student feats[1 + i]; <k>.sp: its pooled; <k>.t<i>: teacher preact_feats[1 + i]; <k>.tp.
        s_all = [x.clone().requires_grad_(True) for x in taps(d, k, "s")]
        sp = d["%d.sp" % k].clone().requires_grad_(True)
        p = params(d, k)
        s_levels = s_all + [sp.unsqueeze(-1).unsqueeze(-1)]
        t_levels = taps(d, k, "t") + [d["%d.tp" % k].unsqueeze(-1).unsqueeze(-1)]
        s_levels, t_levels = align(s_levels, t_levels)
        # mdistiller's SHAPES / OUT_SHAPES: the student's and the teacher's level sizes, deepest first.
        x = s_levels[::-1]
        shapes = [tuple(f.shape[-2:]) for f in x]
        out_shapes = [tuple(f.shape[-2:]) for f in t_levels[::-1]]
        results = []
        out_features, res_features = abf(p, 0, x[0], None, shapes[0], out_shapes[0])
        results.append(out_features)
        for i in range(1, len(x)):
            out_features, res_features = abf(p, i, x[i], res_features, shapes[i], out_shapes[i])
            results.insert(0, out_features)
        warm = min((d["%d.epoch" % k].item() + 1) / d["%d.warmup" % k].item(), 1.0)
        loss = warm * hcl_loss(results, [t.detach() for t in t_levels])
        named = {"s%d" % i: v for i, v in enumerate(s_all)}
        named["sp"] = sp
        named.update({"p." + name: v for name, v in p.items()})
        out.update(grads(k, loss, named))
    return out


# --- FitNet (mdistiller distillers/FitNet.py, _common.py ConvReg) ---

def fitnet(d):
    out = {}
    for k in cases(d):
        s = d["%d.s" % k].clone().requires_grad_(True)
        t = d["%d.t" % k]
        p = params(d, k)
        s_h, t_h = s.shape[2], t.shape[2]
        if s_h == 2 * t_h:
            x = F.conv2d(s, p["conv.weight"], p["conv.bias"], stride=2, padding=1)
        elif s_h * 2 == t_h:
            x = F.conv_transpose2d(s, p["conv.weight"], p["conv.bias"], stride=2, padding=1)
        elif s_h >= t_h:
            assert p["conv.weight"].shape[-2:] == (1 + s_h - t_h, 1 + s.shape[3] - t.shape[3])
            x = F.conv2d(s, p["conv.weight"], p["conv.bias"])
        else:
            raise ValueError("student size %d, teacher size %d" % (s_h, t_h))
        loss = F.mse_loss(F.relu(bn(x, p, "bn")), t)
        named = {"s": s}
        named.update({"p." + name: v for name, v in p.items()})
        out.update(grads(k, loss, named))
    return out


main({"ofd": ofd, "reviewkd": reviewkd, "fitnet": fitnet})
