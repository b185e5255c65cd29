# Compares two Chrome traces of the same steps (peer_step time --profile, dto_step.py
# time --profile): self time per op name (an event's duration minus its children's
# on the same thread), summed and divided by the step count, largest differences first.
#   /usr/bin/python3 bench/peer/profile_ops.py dtokd.json torch.json --steps 5
import argparse
import collections
import json


def self_times(path):
    with open(path) as f:
        data = json.load(f)
    events = data['traceEvents'] if isinstance(data, dict) else data
    by_thread = collections.defaultdict(list)
    for e in events:
        if e.get('ph') == 'X' and 'dur' in e:
            by_thread[e.get('tid')].append((float(e['ts']), float(e['dur']), e['name']))
    total = collections.Counter()
    for evs in by_thread.values():
        evs.sort(key=lambda x: (x[0], -x[1]))  # parents before their children
        stack = []  # open events: [end, name, duration, children's time]
        for ts, dur, name in evs:
            while stack and ts >= stack[-1][0]:
                _, n, d, child = stack.pop()
                total[n] += d - child
            if stack:
                stack[-1][3] += dur
            stack.append([ts + dur, name, dur, 0.0])
        for _, n, d, child in stack:
            total[n] += d - child
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--steps', type=int, default=1, help='the traces cover this many steps')
    ap.add_argument('--top', type=int, default=25)
    args = ap.parse_args()
    a, b = self_times(args.a), self_times(args.b)
    rows = sorted(set(a) | set(b), key=lambda n: -abs(a[n] - b[n]))
    print(f"{'op':48s} {'A ms/step':>10s} {'B ms/step':>10s} {'A - B':>8s}")
    for n in rows[:args.top]:
        print(f'{n[:48]:48s} {a[n] / 1e3 / args.steps:10.2f} {b[n] / 1e3 / args.steps:10.2f} '
              f'{(a[n] - b[n]) / 1e3 / args.steps:8.2f}')
    print(f"{'total self time':48s} {sum(a.values()) / 1e3 / args.steps:10.2f} "
          f"{sum(b.values()) / 1e3 / args.steps:10.2f}")


if __name__ == '__main__':
    main()
