"""``search --verify-latency``: the picks measured on this machine, for every estimator whose device
this machine is, and a pick over a latency bound replaced by the next-best admitted candidate that
measures within it (a bounded number of tries).

An estimator's device is this machine when its recorded protocol can run here (``cpu``, or ``cuda``
with a GPU) and, for a CPU, its recorded CPU model is this machine's (``lscpu`` model name); the
measurement uses the estimator's own protocol, thread count included. Bounds on other devices are
reported as not measurable here. With one unnamed estimator the summary keys are unsuffixed
(``measured_latency_ms``); with named estimators each key carries the device (``measured_latency_ms_cpu``).
"""

from __future__ import annotations

from typing import Any

from mos_fairseq.base.errors import UserError

VERIFY_MAX_TRIES = 5  # candidates measured per constraint before --verify-latency gives up


def not_measurable_here(estimator: Any) -> str | None:
    """Why this machine cannot measure for ``estimator`` (None when it can)."""
    import torch

    from mos_fairseq.latency.measure import cpu_model

    proto = estimator.info.get("protocol")
    if not proto:
        return "the estimator records no measurement protocol (HAT-format data)"
    if proto.get("device") == "cuda":
        return None if torch.cuda.is_available() else "measured on a CUDA device; none here"
    recorded = (estimator.info.get("measured") or {}).get("cpu")
    if recorded and recorded != cpu_model():
        return f"measured on '{recorded}', this machine is '{cpu_model()}'"
    return None


class DeviceTimer:
    """Measured latency (ms, encoder + decoder) of architectures with one estimator's protocol, cached."""

    def __init__(self, estimator: Any):
        from mos_fairseq.latency.measure import synthetic_dictionary
        from mos_fairseq.latency.protocol import Protocol

        self.protocol = Protocol(**estimator.info["protocol"])
        self.dictionary = synthetic_dictionary(self.protocol.vocab_size)
        self.cache: dict[str, float] = {}

    def __call__(self, arch: Any) -> float:
        import torch

        from mos_fairseq.latency.measure import build_model, deployed, measure_model

        key = arch.to_json()
        if key not in self.cache:
            threads = torch.get_num_threads()
            if self.protocol.threads:  # the estimator's data was measured with this many threads: so is the check
                torch.set_num_threads(self.protocol.threads)
            try:
                model = deployed(build_model(arch, self.dictionary, self.protocol.device), self.protocol.dtype)
                stats = measure_model(model, self.protocol)
            finally:
                torch.set_num_threads(threads)
            self.cache[key] = stats.encoder_mean + stats.decoder_mean
        return self.cache[key]


def _key(base: str, device: str | None) -> str:
    return base if device is None else f"{base}_{device}"


def _cost(device: str | None) -> str:
    return "latency" if device is None else f"latency:{device}"


def verify_latency(
    best: list, constraints: list, estimators: dict, candidates=(), max_tries: int = VERIFY_MAX_TRIES
) -> tuple[list, dict]:
    """``estimators``: ``{device name or None: estimator}``. Returns ``(picks, extra summary fields per
    constraint)``; a pick over a measurable latency bound is flagged, then the admitted candidates are
    measured in loss order (at most ``max_tries`` per constraint) and the first within every measurable
    bound replaces it."""
    if not estimators:
        raise UserError("--verify-latency needs --estimator")
    reasons = {d: not_measurable_here(e) for d, e in estimators.items()}
    if None in estimators and reasons[None]:
        raise UserError(f"cannot --verify-latency: {reasons[None]}")
    timers = {d: DeviceTimer(e) for d, e in estimators.items() if not reasons[d]}
    if not timers:
        raise UserError(
            "--verify-latency: no estimator's device is this machine ("
            + "; ".join(f"{d}: {r}" for d, r in reasons.items())
            + ")"
        )

    def record(x, with_predicted: bool = True) -> dict[str, Any]:
        row: dict[str, Any] = {"architecture": x.arch.describe()}
        for d, timer in timers.items():
            if with_predicted:
                row[_key("predicted_latency_ms", d)] = round(x.costs[_cost(d)], 4)
            row[_key("measured_latency_ms", d)] = round(timer(x.arch), 3)
        row["valid_loss"] = round(x.loss, 6)
        return row

    picks, out = list(best), {}
    for i, (c, b) in enumerate(zip(constraints, best)):
        entry: dict[str, Any] = {}
        for d, timer in timers.items():
            ms = timer(b.arch)
            entry[_key("measured_latency_ms", d)] = round(ms, 3)
            entry[_key("predicted_vs_measured", d)] = round(b.costs[_cost(d)] / ms, 4) if _cost(d) in b.costs else None
        checked = [p for p in c.parts if p.kind == "latency" and p.device in timers]
        skipped = {p.device: reasons[p.device] for p in c.parts if p.kind == "latency" and p.device not in timers}
        if skipped:
            entry["not_measured_here"] = skipped
        if checked:

            def fits(arch) -> bool:
                return all(timers[p.device](arch) <= p.value for p in checked)  # noqa: B023 (called at once)

            entry["within_constraint"] = fits(b.arch)
            if not entry["within_constraint"]:
                over = "; ".join(
                    f"{timers[p.device](b.arch):.2f} ms > {p.value:g} ms" + (f" on {p.device}" if p.device else "")
                    for p in checked
                    if timers[p.device](b.arch) > p.value
                )
                admitted = sorted(
                    (x for x in candidates if c.allows(x.costs)), key=lambda x: (x.loss, x.arch.to_json())
                )
                tried = [record(b)]
                for x in admitted:
                    if len(tried) >= max_tries:
                        break
                    if x.arch.to_json() == b.arch.to_json():
                        continue
                    tried.append(record(x))
                    if fits(x.arch):
                        picks[i] = x
                        entry["within_constraint"] = True
                        for d, timer in timers.items():
                            ms = timer(x.arch)
                            entry[_key("measured_latency_ms", d)] = round(ms, 3)
                            entry[_key("predicted_vs_measured", d)] = round(x.costs[_cost(d)] / ms, 4)
                        break
                entry["verify_tries"] = tried
                entry["verify_note"] = f"the search's pick measured {over}; " + (
                    f"replaced by the best admitted candidate that measures within it (try {len(tried)} of "
                    f"at most {max_tries})"
                    if entry["within_constraint"]
                    else f"none of the {len(tried)} best admitted candidates measured within it (at most {max_tries} "
                    "tried): the pick is kept and flagged"
                )
        out[c.name] = entry
    return picks, out
