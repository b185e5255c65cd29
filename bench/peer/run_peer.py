#!/usr/bin/python3
# dtokd vs eager PyTorch, side by side in one run. Builds nothing: expects peer_step
# in BUILD/bench (cmake --build BUILD --target peer_step).
#   1. agreement: peer_step dumps initial weights + batch and ONE step of kd/dto;
#      dto_step.py redoes it in PyTorch; pi and every parameter must agree within --tol.
#   2. timing: per repeat, dtokd and PyTorch processes alternate (order flipped every
#      repeat), each --warmup steps then --steps timed steps; medians over all timed steps.
#   3. the DTO arithmetic alone at resnet32x4 size (7.43M parameters).
# Writes a Markdown report (default bench/peer/RESULTS.md) and the raw numbers beside it
# (RESULTS.json; --report-from rewrites the report from them).
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

    def __init__(self, limit, tries, max_wait, budget, env=None):
        self.limit, self.tries, self.max_wait, self.env = limit, tries, max_wait, env
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
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, env=self.env).stdout
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
    ap.add_argument('--env', action='append', default=[], metavar='KEY=VALUE',
                    help='set for every timed process, both sides (e.g. MALLOC_MMAP_THRESHOLD_=268435456)')
    ap.add_argument('--check-only', action='store_true', help='agreement only, no timing, no report')
    ap.add_argument('--out', default=os.path.join(HERE, 'RESULTS.md'),
                    help='the report; the raw numbers go beside it (.json)')
    ap.add_argument('--report-from', metavar='RAW.json', help='only rewrite --out from saved raw numbers')
    args = ap.parse_args()
    if args.report_from:
        text = regenerate(args.report_from)
        with open(args.out, 'w') as f:
            f.write(text)
        print(text)
        return 0

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

    # 2. + 3. Timing, alternating; every accepted run is kept as a raw record.
    env = dict(os.environ, **dict(kv.split('=', 1) for kv in args.env))
    quiet = Contention(args.others_limit, args.tries, args.max_wait, args.wait_budget, env)
    meta = dict(load_before=load(), started=f'{datetime.datetime.now():%Y-%m-%d %H:%M}', commit=git_commit(),
                cpu=cpu_model(), nproc=os.cpu_count(), threads=args.threads, repeats=args.repeats,
                warmup=args.warmup, steps=args.steps, arith_steps=args.arith_steps, others_limit=args.others_limit,
                tries=args.tries, max_wait=args.max_wait, tol=args.tol, env=args.env,
                dtokd_sets_malloc=True,  # peer_step calls configure_host_allocator() (since 33e56ae)
                command=' '.join([sys.executable, os.path.relpath(__file__)] + sys.argv[1:]))
    records = []

    def record(kind, model, method, impl, rep, r):
        records.append(dict(kind=kind, model=model, method=method, impl=impl, rep=rep,
                            others=quiet.accepted[-1], step_ms=r['step_ms'], forward_ms=r.get('forward_ms'),
                            backward_ms=r.get('backward_ms'), params=r['params']))

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
                for impl in (['dtokd', 'torch'] if rep % 2 == 0 else ['torch', 'dtokd']):
                    record('step', model, method, impl, rep, quiet.run(runs[impl], log))
                print(f"rep {rep} {model} {method}: " + ', '.join(
                    f"{x['impl']} {med(x['step_ms']):.2f} ms (others {x['others']:.0%})" for x in records[-2:]),
                      flush=True)
        arith = {
            'dtokd': [peer, 'arith', '--model', 'resnet32x4', '--input', '3x32x32', '--classes', '100',
                      '--warmup', '3', '--steps', str(args.arith_steps)] + th,
            'torch-foreach': py + ['arith', '--gram', 'foreach', '--warmup', '3', '--steps', str(args.arith_steps)],
            'torch-cat': py + ['arith', '--gram', 'cat', '--warmup', '3', '--steps', str(args.arith_steps)],
        }
        for impl in (list(arith) if rep % 2 == 0 else list(reversed(arith))):
            record('arith', 'resnet32x4', 'dto', impl, rep, quiet.run(arith[impl], log))
        print(f"rep {rep} arith: " + ', '.join(
            f"{x['impl']} {med(x['step_ms']):.2f} ms (others {x['others']:.0%})" for x in records[-3:]), flush=True)
    meta.update(finished=f'{datetime.datetime.now():%Y-%m-%d %H:%M}', load_after=load(), reruns=quiet.reruns,
                waited_s=round(quiet.waited), commands=sorted(set(log)))
    raw = os.path.splitext(args.out)[0] + '.json'
    meta['raw'] = os.path.basename(raw)
    with open(raw, 'w') as f:
        json.dump(dict(meta=meta, checks=checks, records=records), f, indent=1)
    text = report(meta, checks, records)
    with open(args.out, 'w') as f:
        f.write(text)
    print(text)
    return 0 if all_ok else 1


def git_commit():
    try:
        return subprocess.run(['git', '-C', HERE, 'rev-parse', '--short', 'HEAD'], stdout=subprocess.PIPE,
                              text=True).stdout.strip()
    except OSError:
        return '?'


def report(meta, checks, records):
    """The Markdown report from the raw records. Only runs during which other processes
    used at most meta['others_limit'] of the CPUs count; a row without one uses all its
    runs and says so."""
    import torch  # only for the version line
    limit = meta['others_limit']

    def pick(kind, model, method, impl):
        runs = [r for r in records if (r['kind'], r['model'], r['method'], r['impl']) == (kind, model, method, impl)]
        clean = [r for r in runs if r['others'] <= limit]
        return (clean or runs), len(clean), len(runs)

    def cell(runs, n_clean, n_all, field='step_ms'):
        steps = [x for r in runs for x in r[field]]
        reps = ', '.join('%.1f' % med(r[field]) for r in runs)
        note = '' if n_clean else ' (all runs contended)'
        return med(steps), f'{med(steps):.2f} [{reps}] ({n_clean}/{n_all} runs){note}'

    shares = [r['others'] for r in records]
    lines = [
        '# dtokd vs eager PyTorch: one training step, measured side by side',
        '',
        f"- date: {meta['started']} to {meta['finished']}; commit {meta['commit']} (+ working tree)",
        f"- machine: {meta['nproc']} hardware threads, {meta['cpu']}; both sides ran with {meta['threads']} threads",
        f"- load average (1/5/15 min) before timing: {meta['load_before']}; after: {meta['load_after']} "
        '(the machine is shared: other jobs run beside this one)',
        f'- PyTorch {torch.__version__} (Debian python3-torch, the same LibTorch dtokd links)',
        f"- command: `{meta['command']}`",
        f"- environment of both sides' timed processes: "
        f"{', '.join('`%s`' % kv for kv in meta.get('env', [])) or 'unchanged (OpenMP and glibc defaults)'}"
        + ("; dtokd's process sets glibc's mmap/trim thresholds itself at start-up, as the dtokd CLI does "
           "(runtime/host_allocator.h), unless the environment sets them" if meta.get('dtokd_sets_malloc') else ''),
        f"- protocol: {meta['repeats']} repeats; per repeat one dtokd and one PyTorch process per row, order flipped "
        f"every repeat; each {meta['warmup']} warm-up + {meta['steps']} timed steps on one fixed batch "
        f"(arithmetic: 3 + {meta['arith_steps']}).",
        f"- contention: each timed process starts after a 0.5 s window in which other processes used <= "
        f"{limit:.0%} of the CPUs (waiting up to {meta['max_wait']:g} s), and is rerun (up to {meta['tries']} runs) "
        f"when others used more while it ran (/proc/stat minus its own rusage): {meta['reruns']} reruns, "
        f"{meta['waited_s']} s waited; others' share over the accepted runs: median {med(shares):.1%}, max "
        f"{max(shares):.1%}. Statistics use only runs within the limit ((clean/all runs) per cell); each cell: "
        'median over all their timed steps [per-run medians].',
        '- step = student forward + both losses + backward pass(es) + DTO arithmetic + SGD update '
        '(momentum 0.9, weight decay 5e-4); teacher logits precomputed (dtokd reads them from its cache).',
        f"- raw per-step numbers: {meta.get('raw', 'RESULTS.json')} beside this file.",
        '',
        '## Agreement (same initial weights and batch, one step, tolerance %g)' % meta['tol'],
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
    lines += ['', 'max abs step: the largest parameter change the step made (the check is not vacuous).',
              '', '## Step time (ms)', '',
              '| model (input, batch) | method | dtokd | PyTorch | dtokd / PyTorch | target |', '|---|---|---|---|---|---|']
    split = ['', '## Where the step time goes (ms, medians over the same runs; rest = step - forward - backward: '
             'Gram, closed form, update, overheads)', '',
             '| model | method | dtokd forward | PyTorch forward | dtokd backward | PyTorch backward '
             '| dtokd rest | PyTorch rest |', '|---|---|---|---|---|---|---|---|']
    for model, shape, classes, batch in MODELS:
        for method in METHODS:
            (dr, dn, da), (tr, tn, ta) = pick('step', model, method, 'dtokd'), pick('step', model, method, 'torch')
            d, dcell = cell(dr, dn, da)
            t, tcell = cell(tr, tn, ta)
            target = ''
            if method == 'dto':
                target = f"<= {STEP_TARGET}: {'met' if d / t <= STEP_TARGET else 'MISSED'}"
            lines.append(f'| {model} ({shape}, {classes} classes, {batch}) | {method} | {dcell} | {tcell} '
                         f'| {d / t:.3f} | {target} |')
            part = {}
            for name, runs in (('d', dr), ('t', tr)):
                f_ = [x for r in runs for x in r['forward_ms']]
                b_ = [x for r in runs for x in r['backward_ms']]
                s_ = [x for r in runs for x in r['step_ms']]
                part[name] = (med(f_), med(b_), med([a - b - c for a, b, c in zip(s_, f_, b_)]))
            split.append(f"| {model} | {method} | {part['d'][0]:.2f} | {part['t'][0]:.2f} | {part['d'][1]:.2f} "
                         f"| {part['t'][1]:.2f} | {part['d'][2]:.2f} | {part['t'][2]:.2f} |")
    lines += split
    dr, dn, da = pick('arith', 'resnet32x4', 'dto', 'dtokd')
    ad, adcell = cell(dr, dn, da)
    lines += ['', f"## DTO arithmetic alone at resnet32x4 size ({dr[0]['params']} parameters, ms)", '',
              'Gram of the two log-gradients + closed form + combined direction + SGD momentum/weight-decay '
              'update. dtokd: Halide log_gram + min_norm_tradeoff + FusedOptimizer on flat arenas. '
              'PyTorch foreach: torch._foreach_norm + per-parameter dots, _foreach_mul_/_foreach_add_ in place, '
              'SGD(foreach=True) on the 104 parameter tensors. PyTorch cat: torch.cat of both gradients, three '
              'dots, one combined flat gradient split into per-parameter views, SGD(foreach=True).', '',
              '| implementation | ms | speed-up of dtokd | target |', '|---|---|---|---|',
              f'| dtokd | {adcell} | | |']
    for impl in ('torch-foreach', 'torch-cat'):
        t, tcell = cell(*pick('arith', 'resnet32x4', 'dto', impl))
        target = f">= {ARITH_TARGET}x: {'met' if t / ad >= ARITH_TARGET else 'MISSED'}" if impl == 'torch-foreach' else ''
        lines.append(f'| PyTorch {impl[6:]} | {tcell} | {t / ad:.2f}x | {target} |')
    lines += ['', '## Commands run', '', '```'] + meta['commands'] + ['```', '']
    return '\n'.join(lines)


def regenerate(path):
    with open(path) as f:
        raw = json.load(f)
    return report(raw['meta'], raw['checks'], raw['records'])


if __name__ == '__main__':
    sys.exit(main())
