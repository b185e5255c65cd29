# The PyTorch peer of dtokd's training step: the same kd and exact dto steps
# (shared/METHOD.md) written the way an eager-PyTorch user would, independent of
# dtokd's code. Student forward, L_task = CE, L_distill = T^2 KL batchmean (T = 4);
# kd: one backward of 0.9 L_d + 0.1 L_t; dto: two autograd.grad passes, the Gram of
# the log-gradients (1/L folded into scalars) per parameter (torch._foreach_norm and
# per-parameter dots) or on concatenated flat copies (--gram cat), the closed form,
# the combined gradient (torch._foreach_mul_/_add_ in place), then
# torch.optim.SGD(momentum 0.9, weight decay 5e-4, foreach=True).
# Run with Debian's /usr/bin/python3 (python3-torch), the LibTorch dtokd links.
#   dto_step.py check DIR            redo peer_step's one step from its dump; JSON diffs
#   dto_step.py time DIR [...]       per-step milliseconds, one JSON line
#   dto_step.py arith [...]          DTO arithmetic alone on a model's parameter shapes
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

# The zoo's PyTorch definitions (the ones `dtokd export` targets): the same modules, names and order.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "pytorch"))
from dtokd_zoo import build  # noqa: E402


def make_model(name, in_channels, num_classes):
    return build(name, num_classes, in_channels)

_DTYPES = {'float32': np.float32, 'int64': np.int64}


def read_raw(path, entries):
    """Tensors of one raw file written by peer_step, in manifest order."""
    out, offset = {}, 0
    with open(path, 'rb') as f:
        blob = f.read()
    for e in entries:
        dt = np.dtype(_DTYPES[e['dtype']])
        n = int(np.prod(e['shape'])) if e['shape'] else 1
        arr = np.frombuffer(blob, dtype=dt, count=n, offset=offset).reshape(e['shape'])
        out[e['name']] = torch.from_numpy(arr.copy())
        offset += n * dt.itemsize
    if offset != len(blob):
        raise ValueError(f'{path}: {len(blob)} bytes but the manifest describes {offset}')
    return out


def load_dump(folder):
    with open(os.path.join(folder, 'manifest.json')) as f:
        manifest = json.load(f)
    initial = read_raw(os.path.join(folder, 'initial.bin'), manifest['initial'])
    after = read_raw(os.path.join(folder, 'after.bin'), manifest['after'])
    return manifest, initial, after


def build_student(manifest, initial):
    """The PyTorch twin with peer_step's initial parameters (names and shapes must match)."""
    model = make_model(manifest['model'], manifest['input'][0], manifest['classes'])
    ours = dict(model.named_parameters())
    theirs = {k[len('param/'):]: v for k, v in initial.items() if k.startswith('param/')}
    if list(ours) != list(theirs):
        raise ValueError(f'parameter names differ:\n  torch: {list(ours)}\n  dtokd: {list(theirs)}')
    with torch.no_grad():
        for name, p in ours.items():
            if p.shape != theirs[name].shape:
                raise ValueError(f'{name}: torch shape {tuple(p.shape)}, dtokd {tuple(theirs[name].shape)}')
            p.copy_(theirs[name])
    return model.train()


def kd_losses(z, zt, y, temperature):
    task = F.cross_entropy(z, y)
    distill = F.kl_div(F.log_softmax(z / temperature, 1), F.log_softmax(zt / temperature, 1),
                       reduction='batchmean', log_target=True) * (temperature * temperature)
    return distill, task


def gram_foreach(a, b):
    """<a,a>, <a,b>, <b,b> over per-parameter lists, per-tensor results summed in double.
    The norms are torch._foreach_norm; <a,b> is a sum of per-parameter dots, which on
    this CPU build beat torch._foreach_mul + .sum() by ~10x (no 30 MB temporaries)."""
    g11 = torch.stack(torch._foreach_norm(a)).double().square().sum()
    g22 = torch.stack(torch._foreach_norm(b)).double().square().sum()
    g12 = torch.stack([torch.dot(x.reshape(-1), y.reshape(-1)) for x, y in zip(a, b)]).double().sum()
    return g11.item(), g12.item(), g22.item()


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def min_norm_pi1(g11, g12, g22):
    """Theorem 3.1: min-norm point of [a, b]; (1/2, 1/2) when a ~ b."""
    denom = g11 + g22 - 2 * g12
    if denom <= 1e-12 * (g11 + g22):
        return 0.5
    return min(max((g22 - g12) / denom, 0.0), 1.0)


def dto_combined_gradient(a, b, Ld, Lt, gram, sizes):
    """The DTO arithmetic on two per-parameter gradient lists of L_d and L_t: Gram of the
    log-gradients a/Ld, b/Lt, the closed form, and g = pi1 a/Ld + pi2 b/Lt per parameter.
    gram='foreach' works on the lists and writes g into a's tensors (a is a temporary);
    gram='cat' concatenates both and splits one flat g by `sizes`. Returns (pi1, g)."""
    if gram == 'foreach':
        aa, ab, bb = gram_foreach(a, b)
    else:
        fa, fb = flat(a), flat(b)
        aa, ab, bb = fa.dot(fa).item(), fa.dot(fb).item(), fb.dot(fb).item()
    pi1 = min_norm_pi1(aa / (Ld * Ld), ab / (Ld * Lt), bb / (Lt * Lt))
    if gram == 'foreach':
        g = list(a)
        torch._foreach_mul_(g, pi1 / Ld)
        torch._foreach_add_(g, b, alpha=(1.0 - pi1) / Lt)
    else:
        g = torch.add(fa * (pi1 / Ld), fb, alpha=(1.0 - pi1) / Lt).split(sizes)
    return pi1, g


class PeerStep:
    def __init__(self, model, method, lr, momentum, weight_decay, gram='foreach', temperature=4.0, eps=1e-8,
                 alpha_distill=0.9, alpha_task=0.1):
        if method not in ('kd', 'dto'):
            raise ValueError(f"method '{method}'; expected kd or dto")
        if gram not in ('foreach', 'cat'):
            raise ValueError(f"gram '{gram}'; expected foreach or cat")
        self.model, self.method, self.gram = model, method, gram
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(self.params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)
        self.t, self.eps = temperature, eps
        self.alpha_distill, self.alpha_task = alpha_distill, alpha_task
        self.forward_seconds = self.backward_seconds = 0.0  # of the last step

    def __call__(self, x, y, zt):
        t0 = time.perf_counter()
        z = self.model(x)
        ld, lt = kd_losses(z, zt, y, self.t)
        ld_v, lt_v = ld.item(), lt.item()
        t1 = time.perf_counter()
        self.forward_seconds = t1 - t0
        if self.method == 'kd':
            self.opt.zero_grad(set_to_none=True)
            (self.alpha_distill * ld + self.alpha_task * lt).backward()
            self.backward_seconds = time.perf_counter() - t1
            self.opt.step()
            return dict(pi1=self.alpha_distill, pi2=self.alpha_task, loss_distill=ld_v, loss_task=lt_v)
        a = torch.autograd.grad(ld, self.params, retain_graph=True)
        b = torch.autograd.grad(lt, self.params)
        self.backward_seconds = time.perf_counter() - t1
        pi1, g = dto_combined_gradient(a, b, max(ld_v, self.eps), max(lt_v, self.eps), self.gram,
                                       [p.numel() for p in self.params])
        pi2 = 1.0 - pi1
        for p, gp in zip(self.params, g):
            p.grad = gp.view_as(p)
        self.opt.step()
        return dict(pi1=pi1, pi2=pi2, loss_distill=ld_v, loss_task=lt_v)


def make_step(manifest, initial, method=None, gram='foreach', device='cpu'):
    model = build_student(manifest, initial).to(device)
    return PeerStep(model, method or manifest['method'], manifest['lr'], manifest['momentum'],
                    manifest['weight_decay'], gram=gram, temperature=manifest['temperature'],
                    eps=manifest['eps'], alpha_distill=manifest['alpha_distill'],
                    alpha_task=manifest['alpha_task'])


def batch(initial, device='cpu'):
    return tuple(initial[k].to(device) for k in ('images', 'labels', 'teacher_logits'))


def synchronize(device):
    """Waits for the device's queued work (a GPU step's time is its finished work)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def cmd_check(args):
    manifest, initial, after = load_dump(args.dir)
    step = make_step(manifest, initial, gram=args.gram, device=args.device)
    got = step(*batch(initial, args.device))
    want = manifest['result']
    worst_name, worst, moved = '', 0.0, 0.0
    for name, p in step.model.named_parameters():
        d = (p.detach().cpu() - after['param/' + name]).abs().max().item()
        moved = max(moved, (after['param/' + name] - initial['param/' + name]).abs().max().item())
        if d >= worst:
            worst_name, worst = name, d
    out = dict(model=manifest['model'], method=step.method, gram=args.gram, device=args.device,
               pi1_torch=got['pi1'], pi1_dtokd=want['pi1'], pi_abs_diff=abs(got['pi1'] - want['pi1']),
               loss_distill_abs_diff=abs(got['loss_distill'] - want['loss_distill']),
               loss_task_abs_diff=abs(got['loss_task'] - want['loss_task']),
               param_max_abs_diff=worst, param_worst=worst_name, param_max_abs_step=moved,
               tolerance=args.tol)
    out['ok'] = out['pi_abs_diff'] <= args.tol and worst <= args.tol
    print(json.dumps(out))
    return 0 if out['ok'] else 1


def cmd_time(args):
    manifest, initial, _ = load_dump(args.dir)
    step = make_step(manifest, initial, method=args.method, gram=args.gram, device=args.device)
    x, y, zt = batch(initial, args.device)
    if args.channels_last:  # NHWC activations and conv weights: oneDNN convolves without layout reorders
        step.model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    for _ in range(args.warmup):
        step(x, y, zt)
    total, forward, backward = [], [], []
    prof = torch.autograd.profiler.profile() if args.profile else None
    if prof:
        prof.__enter__()
    synchronize(args.device)
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step(x, y, zt)
        synchronize(args.device)
        total.append(1e3 * (time.perf_counter() - t0))
        forward.append(1e3 * step.forward_seconds)
        backward.append(1e3 * step.backward_seconds)
    if prof:
        prof.__exit__(None, None, None)
        prof.export_chrome_trace(args.profile)
    print(json.dumps(dict(impl='torch', mode='time', model=manifest['model'], method=step.method, gram=args.gram,
                          device=args.device, torch=torch.__version__,
                          channels_last=args.channels_last,
                          threads=torch.get_num_threads(), params=sum(p.numel() for p in step.params),
                          step_ms=total, forward_ms=forward, backward_ms=backward)))
    return 0


def cmd_arith(args):
    """Gram of the log-gradients + closed form + combined gradient + SGD step, on random
    per-parameter gradient lists shaped like the model's parameters."""
    torch.manual_seed(0)
    model = make_model(args.model, args.channels, args.classes)
    params = [p for p in model.parameters()]
    a = [torch.randn_like(p) for p in params]
    b = [torch.randn_like(p) for p in params]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=True)
    Ld, Lt = 1.3, 0.7
    sizes = [p.numel() for p in params]

    def once():
        # foreach combines in place into a, as the step does (a -> (1-c)^-1 c_b b: bounded)
        _, g = dto_combined_gradient(a, b, Ld, Lt, args.gram, sizes)
        for p, gp in zip(params, g):
            p.grad = gp.view_as(p)
        opt.step()

    for _ in range(args.warmup):
        once()
    ms = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        once()
        ms.append(1e3 * (time.perf_counter() - t0))
    print(json.dumps(dict(impl='torch', mode='arith', model=args.model, gram=args.gram,
                          threads=torch.get_num_threads(), params=sum(sizes), tensors=len(params), step_ms=ms)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--threads', type=int, default=os.cpu_count(), help='torch.set_num_threads (default: all)')
    ap.add_argument('--device', default='cpu', help='check and time: cpu or cuda (the same GPU as peer_step --device)')
    sub = ap.add_subparsers(dest='cmd', required=True)
    c = sub.add_parser('check')
    c.add_argument('dir')
    c.add_argument('--tol', type=float, default=1e-4)
    c.add_argument('--gram', default='foreach', choices=['foreach', 'cat'])
    t = sub.add_parser('time')
    t.add_argument('dir')
    t.add_argument('--method', choices=['kd', 'dto'])
    t.add_argument('--gram', default='foreach', choices=['foreach', 'cat'])
    t.add_argument('--warmup', type=int, default=5)
    t.add_argument('--steps', type=int, default=20)
    t.add_argument('--profile', metavar='FILE', help='also write a Chrome trace of the timed steps')
    t.add_argument('--channels-last', action='store_true', help='model and batch in channels_last memory format')
    r = sub.add_parser('arith')
    r.add_argument('--model', default='resnet32x4')
    r.add_argument('--channels', type=int, default=3)
    r.add_argument('--classes', type=int, default=100)
    r.add_argument('--gram', default='foreach', choices=['foreach', 'cat'])
    r.add_argument('--warmup', type=int, default=3)
    r.add_argument('--steps', type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    return {'check': cmd_check, 'time': cmd_time, 'arith': cmd_arith}[args.cmd](args)


if __name__ == '__main__':
    sys.exit(main())
