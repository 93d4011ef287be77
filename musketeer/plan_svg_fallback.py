"""A plan picture in SVG without Graphviz: a small layered layout.

Used by `plan_picture.to_svg` when Graphviz's `dot` is not installed, so
`explain --svg` and the compare report draw the plan on any machine. The
layout is the textbook one for small DAGs: each operator's row is the
longest path from an input to it, rows are ordered by the mean position
of their inputs (a few sweeps), and a loop body's boxes are kept side by
side at the left of their rows so its frame contains only them. Graphviz
draws nicer edges; this draws the same boxes, colours, legend and frames.
"""

from __future__ import annotations

import html
from collections import defaultdict

from musketeer.plan_picture import COLOURS, Cluster, PlanGraph

FONT = 11  # px
CHAR_W = 6.4  # average width of a Helvetica/DejaVu Sans character at FONT px
LINE_H = 14
PAD_X, PAD_Y = 8, 6
GAP_X, GAP_Y = 18, 38
MARGIN = 16
FRAME_PAD = 10


def _loop_of(graph: PlanGraph) -> dict[str, list[Cluster]]:
    """Node key -> the loop clusters containing it, outermost first."""
    out: dict[str, list[Cluster]] = defaultdict(list)

    def visit(c: Cluster, path: list[Cluster]) -> None:
        here = path + [c] if c.loop else path
        for key in c.nodes:
            out[key] = here
        for child in c.children:
            visit(child, here)

    for c in graph.clusters:
        visit(c, [])
    return out


def _ranks(graph: PlanGraph) -> dict[str, int]:
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for e in graph.edges:
        if e.src in graph.nodes and e.dst in graph.nodes:
            preds[e.dst].append(e.src)
            succs[e.src].append(e.dst)
    indeg = {k: len(preds[k]) for k in graph.nodes}
    rank = {k: 0 for k in graph.nodes}
    ready = [k for k in graph.nodes if indeg[k] == 0]
    done: set[str] = set()
    while ready:
        k = ready.pop(0)
        done.add(k)
        for s in succs[k]:
            rank[s] = max(rank[s], rank[k] + 1)
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    # an input (a Scan, a LoopVar) sits just above its first reader, not in
    # the top row: a left-deep join tree then reads as a staircase
    for k in graph.nodes:
        if not preds[k] and succs[k]:
            rank[k] = max(0, min(rank[s] for s in succs[k]) - 1)
    return rank  # nodes on a cycle (none in a valid plan) keep the rank reached so far


def _size(lines: list[str]) -> tuple[float, float]:
    width = max(len(line) for line in lines) * CHAR_W + 2 * PAD_X
    return max(width, 60.0), len(lines) * LINE_H + 2 * PAD_Y


def render(graph: PlanGraph) -> str:
    ranks = _ranks(graph)
    loops = _loop_of(graph)
    preds: dict[str, list[str]] = defaultdict(list)
    for e in graph.edges:
        preds[e.dst].append(e.src)
    rows: dict[int, list[str]] = defaultdict(list)
    for key in graph.nodes:  # text-plan order: inputs first
        rows[ranks[key]].append(key)
    size = {k: _size(n.lines) for k, n in graph.nodes.items()}
    pos: dict[str, float] = {}

    def loop_key(k: str) -> tuple:
        # boxes of a loop body first (outer loops first), then the rest
        return tuple((0, c.key) for c in loops.get(k, [])) + ((1, ""),)

    def place_row(keys: list[str]) -> None:
        for i, k in enumerate(keys):
            pos[k] = i

    for r in sorted(rows):
        place_row(rows[r])
    for _ in range(4):  # barycentre sweeps, loop bodies kept together
        for r in sorted(rows):
            def bary(k: str) -> float:
                ps = [pos[p] for p in preds[k] if p in pos]
                return sum(ps) / len(ps) if ps else pos[k]
            rows[r].sort(key=lambda k: (loop_key(k), bary(k)))
            place_row(rows[r])

    # x: a loop body's boxes take a block of the same width in every row
    # it spans, at the left; everything else follows it.
    block_w: dict[str, float] = defaultdict(float)
    for r, keys in rows.items():
        per_loop: dict[str, float] = defaultdict(float)
        for k in keys:
            for c in loops.get(k, [])[:1]:
                per_loop[c.key] += size[k][0] + GAP_X
        for ck, w in per_loop.items():
            block_w[ck] = max(block_w[ck], w)
    any_loop = bool(block_w)
    row_h = {r: max(size[k][1] for k in keys) for r, keys in rows.items()}
    y_of: dict[int, float] = {}
    y: float = MARGIN + 2 * LINE_H + (LINE_H if graph.subtitle else 0) + (FRAME_PAD + LINE_H if graph.clusters else 0)
    for r in sorted(rows):
        y_of[r] = y
        y += row_h[r] + GAP_Y
    xy: dict[str, tuple[float, float]] = {}
    widths: dict[int, float] = {}
    for r, keys in rows.items():
        x: float = MARGIN + (FRAME_PAD if any_loop else 0)
        current_block: str | None = None
        block_start = x
        for k in keys:
            top = loops.get(k, [])[:1]
            block = top[0].key if top else None
            if block != current_block:
                if current_block is not None:
                    x = max(x, block_start + block_w[current_block]) + 2 * FRAME_PAD
                current_block, block_start = block, x
            xy[k] = (x, y_of[r] + (row_h[r] - size[k][1]) / 2)
            x += size[k][0] + GAP_X
        if current_block is not None:
            x = max(x, block_start + block_w[current_block]) + 2 * FRAME_PAD
        widths[r] = x
    total_w = max([*widths.values(), 320.0]) + MARGIN
    if not any_loop:  # centre each row: reads like a tree
        for r, keys in rows.items():
            shift = (total_w - widths[r]) / 2
            for k in keys:
                xy[k] = (xy[k][0] + shift, xy[k][1])

    out: list[str] = []
    # frames of loop bodies (drawn first, under the boxes)
    for c in _all_clusters(graph.clusters):
        if not c.loop:
            continue
        members = [k for k in _members(c) if k in xy]
        if not members:
            continue
        x0 = min(xy[k][0] for k in members) - FRAME_PAD
        y0 = min(xy[k][1] for k in members) - FRAME_PAD - LINE_H
        x1 = max(xy[k][0] + size[k][0] for k in members) + FRAME_PAD
        y1 = max(xy[k][1] + size[k][1] for k in members) + FRAME_PAD
        out.append(f'<g class="plan-cluster"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" '
                   f'height="{y1 - y0:.1f}" rx="8" fill="none" stroke="#333" stroke-dasharray="5,3"/>'
                   f'<text x="{x0 + 6:.1f}" y="{y0 + LINE_H - 2:.1f}" font-size="{FONT - 1}">'
                   f'{html.escape(c.label)}</text></g>')
    # edges
    for e in graph.edges:
        if e.src not in xy or e.dst not in xy:
            continue
        (sx, sy), (sw, sh) = xy[e.src], size[e.src]
        (dx, dy), (dw, _) = xy[e.dst], size[e.dst]
        x1, y1, x2, y2 = sx + sw / 2, sy + sh, dx + dw / 2, dy
        out.append(f'<line class="plan-edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2 - 2:.1f}" '
                   'stroke="#555" stroke-width="1" marker-end="url(#arrow)"/>')
        if e.label:
            out.append(f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + y2) / 2:.1f}" font-size="{FONT - 2}" '
                       f'fill="#333">{html.escape(e.label)}</text>')
    # boxes
    for k, n in graph.nodes.items():
        bx, by = xy[k]
        w, h = size[k]
        texts = []
        for i, line in enumerate(n.lines):
            weight = ' font-weight="bold"' if i == 0 else ""
            texts.append(f'<text x="{bx + PAD_X:.1f}" y="{by + PAD_Y + (i + 1) * LINE_H - 3:.1f}" '
                         f'font-size="{FONT}"{weight}>{html.escape(line)}</text>')
        out.append(f'<g class="plan-node" id="{k}"><title>{html.escape(n.tooltip)}</title>'
                   f'<rect x="{bx:.1f}" y="{by:.1f}" width="{w:.1f}" height="{h:.1f}" rx="5" '
                   f'fill="{n.colour}" stroke="#444"/>{"".join(texts)}</g>')
    height = y + MARGIN
    # legend
    if graph.engines:
        lx: float = MARGIN
        out.append(f'<text x="{lx}" y="{height + 4:.1f}" font-size="{FONT}">engines:</text>')
        lx += 60
        for name in graph.engines:
            out.append(f'<g class="legend"><rect x="{lx}" y="{height - 8:.1f}" width="14" height="14" '
                       f'fill="{COLOURS.get(name, "#dddddd")}" stroke="#444"/>'
                       f'<text x="{lx + 18}" y="{height + 4:.1f}" font-size="{FONT}">{html.escape(name)}</text></g>')
            lx += 18 + len(name) * CHAR_W + 16
        height += 2 * LINE_H
    head = [f'<text x="{MARGIN}" y="{MARGIN + LINE_H}" font-size="{FONT + 3}" font-weight="bold">'
            f'{html.escape(graph.title)}</text>']
    if graph.subtitle:
        head.append(f'<text x="{MARGIN}" y="{MARGIN + 2 * LINE_H + 2}" font-size="{FONT}">'
                    f'{html.escape(graph.subtitle)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plan" width="{total_w:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {total_w:.0f} {height:.0f}" font-family="Helvetica, DejaVu Sans, Arial, sans-serif">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>'
            '<rect width="100%" height="100%" fill="white"/>'
            + "".join(head) + "".join(out) + "</svg>\n")


def _all_clusters(clusters: list[Cluster]) -> list[Cluster]:
    out: list[Cluster] = []
    for c in clusters:
        out.append(c)
        out.extend(_all_clusters(c.children))
    return out


def _members(c: Cluster) -> list[str]:
    out = list(c.nodes)
    for child in c.children:
        out.extend(_members(child))
    return out
