"""Try a candidate in the twin before the arm moves: the floating-hand grasp trial
(trial.run_grasp) with the predicted joint targets, the currents the node will command
and the current mass estimate, timed like the real sequence (slow close and lift, the
judge's hold time).

Why: the contact heads are trained on the demonstrations' outcomes, where every kept
grasp succeeded, so they score nearly every candidate ~1; they cannot tell which
predicted hand configurations are fragile (a joint target 0.02 rad off can turn a
pinch into a push). The twin can, for ~0.3 s of CPU per candidate (a trial stops
early once the object is lost), and with the identified mass it is the check the
DREAM pipeline is for (real-to-sim-to-real).
"""
from __future__ import annotations

from dream_grasp.execution import GraspTiming
from dream_grasp.force import GripForceMapper
from dream_grasp.hand_scene import FloatingHandScene
from dream_grasp.policy import GraspPrediction, pose_matrix
from dream_grasp.trial import TrialTimes, preshape, run_grasp, set_mass, thumb_mask


class TwinCheck:
    """Callable(prediction, index) -> None when the candidate holds in the twin, else the reason."""

    def __init__(self, scene: FloatingHandScene, mapper: GripForceMapper, timing: GraspTiming = GraspTiming()):
        self.scene, self.mapper = scene, mapper
        self.times = TrialTimes(close=timing.close_s, settle=timing.squeeze_s, lift=1.5, hold=timing.hold_s)
        self.object_home = pose_matrix(scene.object_home[:3], scene.object_home[3:])
        self.thumb = thumb_mask(scene)

    def __call__(self, prediction: GraspPrediction, i: int) -> str | None:
        q = prediction.joint_targets[i]
        palm = self.object_home @ prediction.palm_in_object[i]
        grip = self.mapper.command(q, prediction.force[i], prediction.fingers[i], palm_rot=palm[:3, :3])
        base_mass = self.scene.object_mass
        set_mass(self.scene, prediction.mass_kg)
        try:
            res = run_grasp(self.scene, palm[:3, 3], palm[:3, :3], preshape(q, self.thumb), q, grip.current_ma,
                            self.times)
        finally:
            set_mass(self.scene, base_mass)
        if res.success:
            return None
        if res.initial_penetration_m > 0.002:
            return f"twin: the open hand starts {res.initial_penetration_m * 1e3:.1f} mm inside the object"
        return (f"twin: the object rose {res.object_rise_m * 1e3:.0f} mm at {prediction.mass_kg:.3f} kg "
                f"({int(res.fingers_at_grasp.sum())} fingers on it), not held")
