#!/usr/bin/python3
# dtokd vs eager PyTorch, side by side in one run. Builds nothing: expects peer_step
# in BUILD/bench (cmake --build BUILD --target peer_step).
#   1. agreement: peer_step dumps initial weights + batch and ONE step of kd/dto;
#      dto_step.py redoes it in PyTorch; pi and every parameter must agree within --tol.
#   2. timing: per repeat, dtokd and PyTorch processes alternate (order flipped every
#      repeat), each --warmup steps then --steps timed steps; medians over all timed steps.
#   3. the DTO arithmetic alone at resnet32x4 size (7.43M parameters).
# Writes a Markdown report (default bench/peer/RESULTS.md).
#   /usr/bin/python3 bench/peer/run_peer.py --build build
import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_PY = os.path.join(HERE, 'dto_step.py')

# (model, input CxHxW, classes, batch, dtokd dto / torch dto target)
MODELS = [
    ('cnn_small', '1x28x28', 10, 128),
    ('resnet20', '3x32x32', 100, 64),
]
METHODS = ['kd', 'dto']
STEP_TARGET = 0.9   # dtokd dto step <= 0.9x PyTorch's
ARITH_TARGET = 3.0  # DTO arithmetic >= 3x faster than PyTorch's foreach version


def busy_jiffies():
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat."""
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def others_share(seconds):
    """Share of the machine's CPU time that other processes used over `seconds`."""
    b0, t0 = busy_jiffies()
    time.sleep(seconds)
    b1, t1 = busy_jiffies()
    return (b1 - b0) / max(1, t1 - t0)


class Contention:
    """Runs a timed process only when the machine is quiet, and reruns it when other
    processes took more than `limit` of the CPU while it ran. Both pools spin
    (OpenMP), so on a 2-core machine any other job inflates a step 10-30x."""

    def __init__(self, limit, tries, max_wait, budget):
        self.limit, self.tries, self.max_wait = limit, tries, max_wait
        self.deadline = time.monotonic() + budget  # after it: no more waiting or reruns
        self.reruns, self.accepted, self.flagged, self.waited = 0, [], 0, 0.0

    def wait_quiet(self):
        t0 = time.monotonic()
        while (time.monotonic() - t0 < self.max_wait and time.monotonic() < self.deadline
               and others_share(0.5) > self.limit):
            pass
        self.waited += time.monotonic() - t0

    def run(self, cmd, log):
        log.append(' '.join(cmd))
        tries = self.tries if time.monotonic() < self.deadline else 1
        for attempt in range(tries):
            self.wait_quiet()
            b0, t0 = busy_jiffies()
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            b1, t1 = busy_jiffies()
            mine = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * os.sysconf('SC_CLK_TCK')
            share = max(0.0, (b1 - b0) - mine) / max(1, t1 - t0)
            if share <= self.limit or attempt == tries - 1 or time.monotonic() >= self.deadline:
                break
            self.reruns += 1
            print(f'  others used {share:.0%} of the CPUs during {os.path.basename(cmd[0])} {cmd[1]}: rerun',
                  flush=True)
        if share > self.limit:
            self.flagged += 1
        self.accepted.append(share)
        return json.loads(out.strip().splitlines()[-1])


def cpu_model():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def load():
    return '%.2f %.2f %.2f' % os.getloadavg()


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description='dtokd vs eager PyTorch: agreement and step timing')
    ap.add_argument('--build', default='build', help='CMake build folder holding bench/peer_step (default build/)')
    ap.add_argument('--work', default='/tmp/dtokd_peer', help='dumps go here')
    ap.add_argument('--threads', type=int, default=os.cpu_count(), help='both sides (default: all hardware threads)')
    ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--warmup', type=int, default=5)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--arith-steps', type=int, default=10)
    ap.add_argument('--tol', type=float, default=1e-4)
    ap.add_argument('--others-limit', type=float, default=0.05,
                    help="rerun a timed process when other processes used more than this share of the CPUs")
    ap.add_argument('--tries', type=int, default=4, help='runs of one timed process at most (then flagged)')
    ap.add_argument('--max-wait', type=float, default=60, help='seconds to wait for a quiet machine per try')
    ap.add_argument('--wait-budget', type=float, default=900,
                    help='seconds after which the timing stops waiting and rerunning (runs are still flagged)')
    ap.add_argument('--check-only', action='store_true', help='agreement only, no timing, no report')
    ap.add_argument('--out', default=os.path.join(HERE, 'RESULTS.md'))
    args = ap.parse_args()

    peer = os.path.join(args.build, 'bench', 'peer_step')
    if not os.access(peer, os.X_OK):
        sys.exit(f'{peer}: not found; build it first: cmake --build {args.build} --target peer_step')
    py = [sys.executable, PEER_PY, '--threads', str(args.threads)]
    th = ['--threads', str(args.threads)]
    log = []

    # 1. Agreement.
    # Seed 0's dumps also serve the timing; dto is checked on a second seed too because
    # a first step often lands on a clamp (pi1 = 0 or 1), which would leave the closed
    # form's interior branch unchecked.
    checks = []
    for model, shape, classes, batch in MODELS:
        for method, seed in [(m, s) for m in METHODS for s in ([0, 1] if m == 'dto' else [0])]:
            d = os.path.join(args.work, f'{model}_{method}' + (f'_s{seed}' if seed else ''))
            subprocess.run([peer, 'dump', '--model', model, '--input', shape, '--classes', str(classes),
                            '--batch', str(batch), '--method', method, '--seed', str(seed), '--out', d] + th,
                           check=True, stdout=subprocess.DEVNULL)
            for gram in (['foreach', 'cat'] if method == 'dto' else ['foreach']):
                cmd = py + ['check', d, '--tol', str(args.tol), '--gram', gram]
                log.append(' '.join(cmd))
                r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
                c = json.loads(r.stdout.strip().splitlines()[-1])
                c['seed'] = seed
                checks.append(c)
                print(f"check {model:10s} {method:4s} seed {seed} {gram:8s} pi1 {c['pi1_dtokd']:.4f} "
                      f"|dpi| {c['pi_abs_diff']:.2e}  "
                      f"max|dparam| {c['param_max_abs_diff']:.2e} ({c['param_worst']})  "
                      f"{'ok' if c['ok'] else 'FAILED'}", flush=True)
    all_ok = all(c['ok'] for c in checks)
    if args.check_only:
        return 0 if all_ok else 1

    # 2. + 3. Timing, alternating.
    quiet = Contention(args.others_limit, args.tries, args.max_wait, args.wait_budget)
    load_before = load()
    started = datetime.datetime.now()
    times = {}  # (kind, model, method/gram, impl) -> [per-step ms], forward ms
    fwd, bwd = {}, {}  # same keys: the forward (+ losses) and backward parts of each step
    for rep in range(args.repeats):
        for model, shape, classes, batch in MODELS:
            for method in METHODS:
                d = os.path.join(args.work, f'{model}_{method}')
                runs = {
                    'dtokd': [peer, 'time', '--model', model, '--input', shape, '--classes', str(classes),
                              '--batch', str(batch), '--method', method, '--warmup', str(args.warmup),
                              '--steps', str(args.steps)] + th,
                    'torch': py + ['time', d, '--method', method, '--warmup', str(args.warmup),
                                   '--steps', str(args.steps)],
                }
                order = ['dtokd', 'torch'] if rep % 2 == 0 else ['torch', 'dtokd']
                for impl in order:
                    r = quiet.run(runs[impl], log)
                    key = ('step', model, method, impl)
                    times.setdefault(key, []).extend(r['step_ms'])
                    fwd.setdefault(key, []).extend(r['forward_ms'])
                    bwd.setdefault(key, []).extend(r['backward_ms'])
                print(f"rep {rep} {model} {method}: dtokd {med(times[('step', model, method, 'dtokd')]):.2f} ms, "
                      f"torch {med(times[('step', model, method, 'torch')]):.2f} ms", flush=True)
        arith = {
            'dtokd': [peer, 'arith', '--model', 'resnet32x4', '--input', '3x32x32', '--classes', '100',
                      '--warmup', '3', '--steps', str(args.arith_steps)] + th,
            'torch-foreach': py + ['arith', '--gram', 'foreach', '--warmup', '3', '--steps', str(args.arith_steps)],
            'torch-cat': py + ['arith', '--gram', 'cat', '--warmup', '3', '--steps', str(args.arith_steps)],
        }
        order = list(arith) if rep % 2 == 0 else list(reversed(arith))
        for impl in order:
            r = quiet.run(arith[impl], log)
            times.setdefault(('arith', 'resnet32x4', 'dto', impl), []).extend(r['step_ms'])
            times[('arith-params',)] = [r['params']]
        print(f"rep {rep} arith: " + ', '.join(
            f"{k} {med(times[('arith', 'resnet32x4', 'dto', k)]):.2f} ms" for k in arith), flush=True)
    finished = datetime.datetime.now()
    load_after = load()

    # Report.
    cmd_line = ' '.join([sys.executable, os.path.relpath(__file__)] + sys.argv[1:])
    try:
        commit = subprocess.run(['git', '-C', HERE, 'rev-parse', '--short', 'HEAD'], stdout=subprocess.PIPE,
                                text=True).stdout.strip()
    except OSError:
        commit = '?'
    import torch  # only for the version line
    lines = [
        '# dtokd vs eager PyTorch: one training step, measured side by side',
        '',
        f'- date: {started:%Y-%m-%d %H:%M} to {finished:%H:%M}; commit {commit} (+ working tree)',
        f'- machine: {os.cpu_count()} hardware threads, {cpu_model()}; both sides ran with {args.threads} threads',
        f'- load average (1/5/15 min) before timing: {load_before}; after: {load_after} '
        '(the machine is shared: other jobs run beside this one)',
        f'- PyTorch {torch.__version__} (Debian python3-torch, the same LibTorch dtokd links)',
        f'- command: `{cmd_line}`',
        f'- protocol: {args.repeats} repeats; per repeat one dtokd and one PyTorch process per row, order flipped '
        f'every repeat; each {args.warmup} warm-up + {args.steps} timed steps on one fixed batch '
        f'(arithmetic: 3 + {args.arith_steps}); medians over all timed steps (per-repeat medians in brackets).',
        f'- contention control: each timed process starts after a 0.5 s window in which other processes used '
        f'<= {args.others_limit:.0%} of the CPUs (waiting up to {args.max_wait:g} s), and is rerun (up to '
        f'{args.tries} runs) when others used more while it ran (from /proc/stat minus its own rusage): '
        f'{quiet.reruns} reruns, {quiet.waited:.0f} s waited; accepted runs: others used median {med(quiet.accepted):.1%}, max '
        f'{max(quiet.accepted):.1%} of the CPUs; {quiet.flagged} accepted over the limit.',
        '- step = student forward + both losses + backward pass(es) + DTO arithmetic + SGD update '
        '(momentum 0.9, weight decay 5e-4); teacher logits precomputed (dtokd reads them from its cache).',
        '',
        '## Agreement (same initial weights and batch, one step, tolerance %g)' % args.tol,
        '',
        '| model | method | seed | PyTorch Gram | pi1 (dtokd) | abs diff pi | abs diff L_d | abs diff L_t '
        '| max abs diff params (worst) | max abs step | ok |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for c in checks:
        lines.append(f"| {c['model']} | {c['method']} | {c['seed']} | {c['gram']} | {c['pi1_dtokd']:.6f} "
                     f"| {c['pi_abs_diff']:.2e} | {c['loss_distill_abs_diff']:.2e} | {c['loss_task_abs_diff']:.2e} "
                     f"| {c['param_max_abs_diff']:.2e} ({c['param_worst']}) | {c['param_max_abs_step']:.2e} "
                     f"| {'yes' if c['ok'] else 'NO'} |")
    lines += ['', 'max abs step: the largest parameter change the step made (the check is not vacuous).']

    def per_rep(key, n):
        xs = times[key]
        return [med(xs[i:i + n]) for i in range(0, len(xs), n)]

    lines += ['', '## Step time (ms, median)', '',
              '| model (input, batch) | method | dtokd | PyTorch | dtokd / PyTorch | target |',
              '|---|---|---|---|---|---|']
    split = ['', '## Where the step time goes (ms, medians of each part; rest = step - forward - backward: '
             'Gram, closed form, update, overheads)', '',
             '| model | method | dtokd forward | PyTorch forward | dtokd backward | PyTorch backward '
             '| dtokd rest | PyTorch rest |', '|---|---|---|---|---|---|---|---|']
    summary = []
    for model, shape, classes, batch in MODELS:
        for method in METHODS:
            kd_, kt = ('step', model, method, 'dtokd'), ('step', model, method, 'torch')
            d, t = med(times[kd_]), med(times[kt])
            target = ''
            if method == 'dto':
                target = f"<= {STEP_TARGET}: {'met' if d / t <= STEP_TARGET else 'MISSED'}"
                summary.append((model, d / t))
            rd = ', '.join('%.1f' % x for x in per_rep(kd_, args.steps))
            rt = ', '.join('%.1f' % x for x in per_rep(kt, args.steps))
            lines.append(f'| {model} ({shape}, {classes} classes, {batch}) | {method} | {d:.2f} [{rd}] '
                         f'| {t:.2f} [{rt}] | {d / t:.3f} | {target} |')
            rest = {k: med([s - f - b for s, f, b in zip(times[k], fwd[k], bwd[k])]) for k in (kd_, kt)}
            split.append(f'| {model} | {method} | {med(fwd[kd_]):.2f} | {med(fwd[kt]):.2f} | {med(bwd[kd_]):.2f} '
                         f'| {med(bwd[kt]):.2f} | {rest[kd_]:.2f} | {rest[kt]:.2f} |')
    lines += split
    params = times[('arith-params',)][0]
    ad = med(times[('arith', 'resnet32x4', 'dto', 'dtokd')])
    lines += ['', f'## DTO arithmetic alone at resnet32x4 size ({params} parameters, ms, median)', '',
              'Gram of the two log-gradients + closed form + combined direction + SGD momentum/weight-decay '
              'update. dtokd: Halide log_gram + min_norm_tradeoff + FusedOptimizer on flat arenas. '
              'PyTorch foreach: torch._foreach_norm + per-parameter dots, _foreach_mul_/_foreach_add_ in place, '
              'SGD(foreach=True) on the 104 parameter tensors. PyTorch cat: torch.cat of both gradients, three '
              'dots, one combined flat gradient split into per-parameter views, SGD(foreach=True).', '',
              '| implementation | ms | speed-up of dtokd | target |', '|---|---|---|---|',
              f'| dtokd | {ad:.2f} [{", ".join("%.1f" % x for x in per_rep(("arith", "resnet32x4", "dto", "dtokd"), args.arith_steps))}] | | |']
    for impl in ('torch-foreach', 'torch-cat'):
        key = ('arith', 'resnet32x4', 'dto', impl)
        t = med(times[key])
        target = f">= {ARITH_TARGET}x: {'met' if t / ad >= ARITH_TARGET else 'MISSED'}" if impl == 'torch-foreach' else ''
        lines.append(f'| PyTorch {impl[6:]} | {t:.2f} [{", ".join("%.1f" % x for x in per_rep(key, args.arith_steps))}] '
                     f'| {t / ad:.2f}x | {target} |')
    lines += ['', '## Commands run', '', '```'] + sorted(set(log)) + ['```', '']
    with open(args.out, 'w') as f:
        f.write('\n'.join(lines))
    print('\n'.join(lines))
    for model, r in summary:
        print(f'{model}: dtokd dto / PyTorch dto = {r:.3f} (target <= {STEP_TARGET})')
    return 0 if all_ok else 1


if __name__ == '__main__':
    sys.exit(main())
