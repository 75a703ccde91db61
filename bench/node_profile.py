#!/usr/bin/python3
"""Sum up a node profile (SALCHECK_NODE_PROFILE=FILE): where a model's passes
spend their CPU time, grouped by operation, output size and kernel.

    SALCHECK_NODE_PROFILE=/tmp/prof.tsv salcheck explain --model M.h5 ... --method ig
    bench/node_profile.py /tmp/prof.tsv [--top 30] [--model N] [--base /tmp/prof_lo.tsv]

Each model that ran a pass appends one block to FILE when it is destroyed
(common/nn/model.c): a '# model ...' line, then one line per node. For each
group the table gives the forward and backward seconds, the share of the
model's time and, for convolutions and dense layers, the GFLOPS of each
direction (the direct convolution's FLOPs: 2 x output elements x input
channels per group x kernel taps per sample; the input gradient counted as
the forward; Winograd layers compute fewer). Only the largest model's block
is summed unless --model picks another (0 = the first block).

--base: the same model's profile of a shorter run (fewer IG steps, same
batch): its times and counts are subtracted node by node, which leaves the
steady state. A short run's first batch also pays for the first touch of
every buffer (page faults), which lands in whichever node first writes a
buffer; the difference of two runs does not carry it.
"""
import argparse
import collections
import sys


def read_blocks(path):
    blocks, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.rstrip('\n')
            if line.startswith('# model'):
                cur = {'title': line[2:], 'rows': []}
                blocks.append(cur)
                continue
            if not line or cur is None:
                continue
            r = line.split('\t')
            if len(r) != 16:
                sys.exit('%s: a line of %d fields, expected 16: %r' % (path, len(r), line[:80]))
            cur['rows'].append({
                'id': int(r[0]), 'name': r[1], 'op': r[2], 'c': int(r[3]), 'h': int(r[4]),
                'w': int(r[5]), 'cin': int(r[6]), 'kh': int(r[7]), 'kw': int(r[8]),
                'sh': int(r[9]), 'sw': int(r[10]), 'groups': int(r[11]),
                'fwd': float(r[12]), 'fwd_n': float(r[13]), 'bwd': float(r[14]),
                'bwd_n': float(r[15])})
    return blocks


def flops_per_sample(r):
    if r['op'] in ('conv', 'gconv'):
        return 2.0 * r['c'] * r['h'] * r['w'] * (r['cin'] // max(r['groups'], 1)) * r['kh'] * r['kw']
    if r['op'] == 'dense':
        return 2.0 * r['c'] * r['cin']
    return 0.0


def pick_block(path, index):
    blocks = read_blocks(path)
    if not blocks:
        sys.exit('%s: no model block' % path)
    if index >= 0:
        if index >= len(blocks):
            sys.exit('%s: %d blocks, no block %d' % (path, len(blocks), index))
        return blocks[index]
    return max(blocks, key=lambda x: sum(r['fwd'] + r['bwd'] for r in x['rows']))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('file')
    ap.add_argument('--top', type=int, default=30)
    ap.add_argument('--model', type=int, default=-1, help='block index (default: the largest)')
    ap.add_argument('--base', help='profile of a shorter run of the same model, subtracted')
    a = ap.parse_args()
    b = pick_block(a.file, a.model)
    rows = b['rows']
    if a.base:
        base = pick_block(a.base, a.model)
        by_id = {r['id']: r for r in base['rows']}
        if set(by_id) != set(r['id'] for r in rows):
            sys.exit('%s and %s: not the same model' % (a.file, a.base))
        for r in rows:
            for k in ('fwd', 'fwd_n', 'bwd', 'bwd_n'):
                r[k] -= by_id[r['id']][k]
        b['title'] += ' (less %s)' % a.base
    total = sum(r['fwd'] + r['bwd'] for r in rows)
    groups = collections.OrderedDict()
    for r in rows:
        kern = '%dx%d/%d' % (r['kh'], r['kw'], r['sh']) if r['op'] in ('conv', 'gconv') else ''
        key = (r['op'], '%dx%d' % (r['h'], r['w']), kern)
        g = groups.setdefault(key, {'n': 0, 'fwd': 0.0, 'bwd': 0.0, 'ffl': 0.0, 'bfl': 0.0})
        g['n'] += 1
        g['fwd'] += r['fwd']
        g['bwd'] += r['bwd']
        g['ffl'] += flops_per_sample(r) * r['fwd_n']
        g['bfl'] += flops_per_sample(r) * r['bwd_n']
    print('%s: %.2f s of CPU in %d nodes' % (b['title'], total, len(rows)))
    print('| op | output | kernel/stride | nodes | forward s | backward s | share | fwd GFLOPS | bwd GFLOPS |')
    print('|---|---|---|---|---|---|---|---|---|')
    for key, g in sorted(groups.items(), key=lambda kv: -(kv[1]['fwd'] + kv[1]['bwd']))[:a.top]:
        gf = lambda fl, t: '%.0f' % (fl / t * 1e-9) if fl and t > 0 else ''
        print('| %s | %s | %s | %d | %.3f | %.3f | %.1f %% | %s | %s |' % (
            key[0], key[1], key[2], g['n'], g['fwd'], g['bwd'],
            100.0 * (g['fwd'] + g['bwd']) / total if total else 0.0,
            gf(g['ffl'], g['fwd']), gf(g['bfl'], g['bwd'])))


if __name__ == '__main__':
    main()
