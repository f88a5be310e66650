"""Progress of an operation while it runs: a tqdm bar when tqdm is installed, else a line per change of phase and
at most one line every few seconds."""
from __future__ import annotations

import sys
import time
from typing import Callable, Iterable, TextIO

_PLAIN_EVERY_S = 5.0


def _summary(op) -> str:
    p = op.progress
    parts = [p.phase or op.state]
    if p.total_steps:
        parts.append(f"step {p.step}/{p.total_steps}")
    elif p.step:
        parts.append(f"step {p.step}")
    if p.tokens:
        parts.append(f"{p.tokens} tokens")
    parts += [f"{k}={v:.4g}" for k, v in sorted(p.metrics.items())[:4]]
    if p.eta_seconds:
        parts.append(f"eta {p.eta_seconds:.0f}s")
    return "  ".join(parts)


def _tqdm():
    try:
        from tqdm.auto import tqdm
        return tqdm
    except ImportError:
        return None


def show(updates: Iterable, progress: "bool | str | Callable" = True, file: TextIO | None = None) -> None:
    """Consumes ``updates`` (Operation snapshots), reporting each as ``progress`` asks: True (tqdm when installed,
    else plain lines), "plain", "tqdm", a callable given every snapshot, or False (nothing)."""
    if callable(progress) and not isinstance(progress, (bool, str)):
        for op in updates:
            progress(op)
        return
    if not progress:
        for _ in updates:
            pass
        return
    file = file or sys.stderr
    bar_type = _tqdm() if progress in (True, "tqdm") else None
    if progress == "tqdm" and bar_type is None:
        raise ImportError("progress='tqdm' needs tqdm (pip install tqdm, or Debian's python3-tqdm)")
    if bar_type is not None:
        _show_bar(updates, bar_type, file)
    else:
        _show_plain(updates, file)


def _show_bar(updates: Iterable, tqdm, file: TextIO) -> None:
    bar, op = None, None
    try:
        for op in updates:
            if bar is None:
                bar = tqdm(total=op.progress.total_steps or None, desc=f"{op.kind} {op.id}", unit="step", file=file, leave=True)
            if op.progress.total_steps and bar.total != op.progress.total_steps:
                bar.total = op.progress.total_steps
            bar.n = op.progress.step
            bar.set_postfix_str(_summary(op), refresh=False)
            bar.refresh()
        if bar is not None and op is not None:
            bar.set_postfix_str(f"{op.state}  {_summary(op)}", refresh=True)
    finally:
        if bar is not None:
            bar.close()


def _show_plain(updates: Iterable, file: TextIO) -> None:
    start, last_time, last_key, op = time.monotonic(), 0.0, None, None
    for op in updates:
        key = (op.state, op.progress.phase, op.progress.message)
        now = time.monotonic()
        if op.done:
            break
        if key != last_key or now - last_time >= _PLAIN_EVERY_S:
            message = f" ({op.progress.message})" if op.progress.message and op.progress.message != op.progress.phase else ""
            print(f"{op.id} {op.kind} {op.state}: {_summary(op)}{message}", file=file, flush=True)
            last_time, last_key = now, key
    if op is not None:
        print(f"{op.id} {op.kind} {op.state} after {time.monotonic() - start:.1f} s: {_summary(op)}", file=file, flush=True)
