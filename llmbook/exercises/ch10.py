"""Chapter 10's coding exercise: PPO's clipped objective and its gradient for one token (``ex-10-clip``)."""

from __future__ import annotations

import math

from llmbook.exercises.record import Exercise, Wrong, call_answer, need_callable

__all__ = ["check_clip", "RECORDS"]


def _clip_reference(log_ratio: float, advantage: float) -> tuple[float, float]:
    ratio = math.exp(log_ratio)
    clipped = min(max(ratio, 0.8), 1.2)
    objective = min(ratio * advantage, clipped * advantage)
    unclipped_active = ratio * advantage <= clipped * advantage
    return objective, (ratio * advantage if unclipped_active else 0.0)


def check_clip(answer, **_) -> str:
    """ex-10-clip: ``answer(log_ratio, advantage)`` returns (objective, gradient) of PPO's clipped objective
    for one token (clip range 0.8 to 1.2), the gradient taken with respect to log pi_theta(y_t)."""
    need_callable(answer, "clipped(log_ratio, advantage) returning (objective, gradient)")
    for advantage in (1.0, -1.0, 2.0):
        for log_ratio in (-0.5, -0.1, 0.0, 0.1, 0.3, 0.5):
            got = call_answer(answer, log_ratio, advantage)
            try:
                objective, gradient = (float(x) for x in got)
            except (TypeError, ValueError):
                raise Wrong("return two numbers, (objective, gradient)") from None
            ref_obj, ref_grad = _clip_reference(log_ratio, advantage)
            where = f"at log ratio {log_ratio:+.1f} and A = {advantage:+.0f}"
            if abs(objective - ref_obj) > 1e-4:
                ratio = math.exp(log_ratio)
                if abs(objective - max(ratio * advantage, min(max(ratio, 0.8), 1.2) * advantage)) < 1e-4:
                    raise Wrong(f"{where} the objective is too large: PPO takes the smaller of the two terms")
                raise Wrong(f"{where} the objective {objective:+.3f} is wrong; ratio = exp(log ratio)")
            if abs(gradient - ref_grad) > 1e-4:
                if abs(gradient - advantage) < 1e-4 and ref_grad != 0:
                    raise Wrong(f"{where} your gradient is A: that is the derivative by the ratio, but the "
                                "exercise asks for the derivative by log pi (the chain rule adds a factor)")
                if ref_grad == 0:
                    raise Wrong(f"{where} the gradient should vanish: which term does the minimum pick, and "
                                "does it depend on the policy there?")
                raise Wrong(f"{where} the gradient {gradient:+.3f} is wrong; use torch.autograd on the "
                            "objective as a function of log pi")
    return "objective and gradient agree at 18 points, inside and outside the clip range."


#: The chapter's exercise records.
RECORDS = (
    Exercise(label="ex-10-clip", answer="clipped", check=check_clip,
             signature="clipped(log_ratio, advantage) -> (objective, gradient)",
             wrong=("_right = clipped\n"
                    "clipped = lambda log_ratio, advantage: "
                    "(_right(log_ratio, advantage)[0], advantage)  # derivative by the ratio")),
)
