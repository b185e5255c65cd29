# PyTorch references for the parameter-free KD objectives (test_kd_methods.cpp):
# dkd / dist on logits, at on stage features, pkt / rkd on pooled embeddings, each
# written as the reference code computes it (mdistiller's DKD.py, AT.py, PKT.py, RKD.py;
# hunto's dist_kd.py; shared/KD_LOSSES.md), with the value and autograd's gradients.
#
# Input keys: "params" = [T, dkd_alpha, dkd_beta, dist_beta, dist_gamma, at_p, rkd_w_d,
# rkd_w_a, warmup_epochs]; per case "<case>.<what>" with what in
#   epoch [1] (0-based), zs, zt [B, C], labels [B]   -> dkd, dkd_tckd, dkd_nckd, dist, dist_inter, dist_intra
#   fs<i>, ft<i> (i = 0..)                            -> at (feats lists, f0 first)
#   ps, pt [B, D]; pkt_safe_norm [1] (optional)      -> pkt, rkd, rkd_distance, rkd_angle
# Output keys: "<case>.<name>.loss" and "<case>.<name>.grad_<input>" for the student inputs.
import torch
import torch.nn.functional as F

from reference_io import main


# --- DKD (mdistiller distillers/DKD.py) ---
def _cat_mask(t, m1, m2):
    return torch.cat([(t * m1).sum(dim=1, keepdims=True), (t * m2).sum(1, keepdims=True)], dim=1)


def dkd_terms(zs, zt, target, T):
    gt = torch.zeros_like(zs).scatter_(1, target.unsqueeze(1), 1).bool()
    other = torch.ones_like(zs).scatter_(1, target.unsqueeze(1), 0).bool()
    ps = _cat_mask(F.softmax(zs / T, dim=1), gt, other)
    pt = _cat_mask(F.softmax(zt / T, dim=1), gt, other)
    tckd = F.kl_div(torch.log(ps), pt, reduction="sum") * (T**2) / target.shape[0]
    pt2 = F.softmax(zt / T - 1000.0 * gt, dim=1)
    ls2 = F.log_softmax(zs / T - 1000.0 * gt, dim=1)
    nckd = F.kl_div(ls2, pt2, reduction="sum") * (T**2) / target.shape[0]
    return tckd, nckd


# --- DIST (hunto image_classification_sota lib/models/losses/dist_kd.py) ---
def _cosine(a, b, eps=1e-8):
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _pearson(a, b, eps=1e-8):
    return _cosine(a - a.mean(1).unsqueeze(1), b - b.mean(1).unsqueeze(1), eps)


def _inter(ys, yt):
    return 1 - _pearson(ys, yt).mean()


def dist_terms(zs, zt, tau):
    ys = (zs / tau).softmax(dim=1)
    yt = (zt / tau).softmax(dim=1)
    return tau**2 * _inter(ys, yt), tau**2 * _inter(ys.transpose(0, 1), yt.transpose(0, 1))


# --- AT (mdistiller distillers/AT.py) ---
def _single_stage_at(f_s, f_t, p):
    def _at(feat):
        return F.normalize(feat.pow(p).mean(1).reshape(feat.size(0), -1))

    s_H, t_H = f_s.shape[2], f_t.shape[2]
    if s_H > t_H:
        f_s = F.adaptive_avg_pool2d(f_s, (t_H, t_H))
    elif s_H < t_H:
        f_t = F.adaptive_avg_pool2d(f_t, (s_H, s_H))
    return (_at(f_s) - _at(f_t)).pow(2).mean()


def at_loss(g_s, g_t, p):
    return sum([_single_stage_at(a, b, p) for a, b in zip(g_s, g_t)])


# --- PKT (mdistiller distillers/PKT.py); safe_norm: |f| by torch.norm (dtokd's deviation) ---
def pkt_loss(f_s, f_t, eps=1e-7, safe_norm=False):
    def norm(f):
        return f.norm(dim=1, keepdim=True) if safe_norm else torch.sqrt(torch.sum(f**2, dim=1, keepdim=True))

    f_s = f_s / (norm(f_s) + eps)
    f_s = torch.where(f_s != f_s, torch.zeros_like(f_s), f_s)
    f_t = f_t / (norm(f_t) + eps)
    f_t = torch.where(f_t != f_t, torch.zeros_like(f_t), f_t)
    ms = (torch.mm(f_s, f_s.t()) + 1.0) / 2.0
    ts = (torch.mm(f_t, f_t.t()) + 1.0) / 2.0
    ms = ms / torch.sum(ms, dim=1, keepdim=True)
    ts = ts / torch.sum(ts, dim=1, keepdim=True)
    return torch.mean(ts * torch.log((ts + eps) / (ms + eps)))


# --- RKD (mdistiller distillers/RKD.py) ---
def _pdist(e, squared, eps):
    e_square = e.pow(2).sum(dim=1)
    prod = e @ e.t()
    res = (e_square.unsqueeze(1) + e_square.unsqueeze(0) - 2 * prod).clamp(min=eps)
    if not squared:
        res = res.sqrt()
    res = res.clone()
    res[range(len(e)), range(len(e))] = 0
    return res


def rkd_terms(f_s, f_t, squared=False, eps=1e-12):
    stu = f_s.view(f_s.shape[0], -1)
    tea = f_t.view(f_t.shape[0], -1)
    with torch.no_grad():
        t_d = _pdist(tea, squared, eps)
        t_d = t_d / t_d[t_d > 0].mean()
    d = _pdist(stu, squared, eps)
    d = d / d[d > 0].mean()
    loss_d = F.smooth_l1_loss(d, t_d)
    with torch.no_grad():
        td = tea.unsqueeze(0) - tea.unsqueeze(1)
        ntd = F.normalize(td, p=2, dim=2)
        t_angle = torch.bmm(ntd, ntd.transpose(1, 2)).view(-1)
    sd = stu.unsqueeze(0) - stu.unsqueeze(1)
    nsd = F.normalize(sd, p=2, dim=2)
    s_angle = torch.bmm(nsd, nsd.transpose(1, 2)).view(-1)
    loss_a = F.smooth_l1_loss(s_angle, t_angle)
    return loss_d, loss_a


def _grads(out, case, name, loss, leaves):
    out["%s.%s.loss" % (case, name)] = loss.detach()
    grads = torch.autograd.grad(loss, [v for _, v in leaves], retain_graph=True, allow_unused=True)
    for (key, v), g in zip(leaves, grads):
        out["%s.%s.grad_%s" % (case, name, key)] = torch.zeros_like(v) if g is None else g


def evaluate(d):
    T, alpha, beta, dist_beta, dist_gamma, at_p, w_d, w_a, warmup = d["params"].tolist()
    cases = sorted({k.split(".")[0] for k in d if "." in k})
    out = {}
    for c in cases:
        x = {k.split(".", 1)[1]: v for k, v in d.items() if k.startswith(c + ".")}
        if "zs" in x:
            zs = x["zs"].clone().requires_grad_(True)
            zt = x["zt"]
            epoch = int(x["epoch"].item())
            warm = min((epoch + 1) / warmup, 1.0) if warmup > 0 else 1.0  # mdistiller's 1-based epoch
            leaves = [("zs", zs)]
            tckd, nckd = dkd_terms(zs, zt, x["labels"], T)
            _grads(out, c, "dkd", warm * (alpha * tckd + beta * nckd), leaves)
            tckd, nckd = dkd_terms(zs, zt, x["labels"], T)
            _grads(out, c, "dkd_tckd", warm * (alpha * tckd), leaves)
            _grads(out, c, "dkd_nckd", warm * (beta * nckd), leaves)
            inter, intra = dist_terms(zs, zt, T)
            _grads(out, c, "dist", dist_beta * inter + dist_gamma * intra, leaves)
            inter, intra = dist_terms(zs, zt, T)
            _grads(out, c, "dist_inter", dist_beta * inter, leaves)
            _grads(out, c, "dist_intra", dist_gamma * intra, leaves)
        if "fs0" in x:
            fs, ft, leaves = [], [], []
            i = 0
            while "fs%d" % i in x:
                f = x["fs%d" % i].clone().requires_grad_(True)
                fs.append(f)
                leaves.append(("fs%d" % i, f))
                i += 1
            i = 0
            while "ft%d" % i in x:
                ft.append(x["ft%d" % i])
                i += 1
            _grads(out, c, "at", at_loss(fs[1:], ft[1:], at_p), leaves)
        if "ps" in x:
            ps = x["ps"].clone().requires_grad_(True)
            pt = x["pt"]
            leaves = [("ps", ps)]
            safe = bool(x.get("pkt_safe_norm", torch.zeros(1)).item())
            _grads(out, c, "pkt", pkt_loss(ps, pt, safe_norm=safe), leaves)
            ld, la = rkd_terms(ps, pt)
            _grads(out, c, "rkd", w_d * ld + w_a * la, leaves)
            ld, la = rkd_terms(ps, pt)
            _grads(out, c, "rkd_distance", w_d * ld, leaves)
            _grads(out, c, "rkd_angle", w_a * la, leaves)
    return out


main({"evaluate": evaluate})
