"""The batch's one progress line and its closing summary table."""
import sys
import time


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """done/failed/running, exposures per minute and the time left, on one line.

    On a terminal the line is a tqdm bar redrawn in place; otherwise (a log file, a batch
    system's output) one plain line per finished exposure, so that the output stays readable."""

    def __init__(self, total, skipped=0, enabled=True, stream=None):
        self.total, self.skipped = total, skipped
        self.done = self.failed = self.running = 0
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.bar = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, initial=skipped, file=self.stream, unit="exp",
                                dynamic_ncols=True, desc="ramp2slope")

    def rate(self):
        """Exposures finished per minute in this run (skipped ones excluded)."""
        minutes = (time.perf_counter() - self.start) / 60
        finished = self.done + self.failed
        return finished / minutes if minutes > 0 and finished else 0.0

    def text(self):
        rate = self.rate()
        left = self.total - self.skipped - self.done - self.failed
        eta = _duration(60 * left / rate) if rate > 0 else "?"
        skipped = f", {self.skipped} skipped" if self.skipped else ""
        return (f"{self.done + self.skipped}/{self.total} done{skipped}, {self.failed} failed, "
                f"{self.running} running, {rate:.1f} exposures/min, {eta} left")

    def update(self, running):
        if running != self.running:
            self.running = running
            if self.bar is not None:
                self.bar.set_postfix_str(self.text(), refresh=True)

    def finished(self, ok, running):
        self.running = running
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(self.text(), refresh=True)
        else:
            print(f"ramp2slope: {self.text()}", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def summary_table(records, seconds):
    """One row per exposure: name, status, seconds, peak memory, and the error of failures."""
    rows = []
    for record in records:
        name = record["input"].rsplit("/", 1)[-1]
        status = "skipped" if record.get("skipped") else record["status"]
        secs = "" if record.get("skipped") or record.get("seconds") is None else f"{record['seconds']:.1f}"
        peak = record.get("peak_memory")
        peak = "" if record.get("skipped") or not peak else f"{peak / 1e9:.2f}"
        rows.append((name, status, secs, peak, record.get("error") or ""))
    width = max([len("exposure")] + [len(r[0]) for r in rows])
    lines = [f"{'exposure':<{width}}  {'status':<11} {'seconds':>8} {'peak GB':>8}  error"]
    for name, status, secs, peak, error in rows:
        lines.append(f"{name:<{width}}  {status:<11} {secs:>8} {peak:>8}  {error}".rstrip())
    counts = {}
    for row in rows:
        counts[row[1]] = counts.get(row[1], 0) + 1
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()) + f" in {_duration(seconds)}")
    return "\n".join(lines)
