"""Fig. 8 of the paper from a trained SOSD-Net: input, the semantic-to-depth unit's maps, the two parts of
the depth fusion and the result against the ground truth, each with a colour bar and its unit.

The fusion is one convolution over [Depth Feature, cue] (§3.2.3), so its output splits exactly into the
pure depth branch (the convolution with the cue channel zeroed, plus the bias) and the semantic-to-depth
part (the cue channel's contribution); the depth is softplus of their sum, upsampled.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def fusion_parts(model, x, k) -> dict:
    """The unit's maps and the two summands of the fusion convolution, at stride 4."""
    model.eval()
    seen = {}
    hook = model.semantic_to_depth.fuse.register_forward_pre_hook(lambda m, a: seen.update(inp=a[0]))
    try:
        out = model(x, k, return_aux=True)
    finally:
        hook.remove()
    fuse, inp = model.semantic_to_depth.fuse, seen["inp"]
    no_cue, only_cue = inp.clone(), torch.zeros_like(inp)
    no_cue[:, -1:] = 0
    only_cue[:, -1:] = inp[:, -1:]
    return {**out["aux"], "depth": out["depth"], "semantic": out["semantic"],
            "depth_branch": fuse(no_cue), "cue_part": F.conv2d(only_cue, fuse.weight, None, padding=fuse.padding)}


def fig8(model, scenes, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    unit = "m" if scenes[0][0].target_kind == "depth" else "px disparity"
    cols = [("input", None, None), ("area_2d", "~ (ΔuΔv)⁻¹ (learned scale)", "magma"),
            ("area_3d", "~ ΔXΔY (learned scale)", "magma"), ("cue", "√(area_3d·area_2d)", "viridis"),
            ("depth_branch", "pure depth branch (fusion logit)", "coolwarm"),
            ("cue_part", "semantic-to-depth part (fusion logit)", "coolwarm"),
            ("depth", f"final depth [{unit}]", "turbo"), ("target", f"ground truth [{unit}]", "turbo")]
    fig, axes = plt.subplots(len(scenes), len(cols), figsize=(2.6 * len(cols), 2.0 * len(scenes) + 0.6),
                             squeeze=False)
    for i, (sample, _) in enumerate(scenes):
        x = torch.from_numpy(sample.image).permute(2, 0, 1)[None].float() / 255.0
        parts = fusion_parts(model, x, torch.from_numpy(sample.intrinsics)[None])
        gt = np.where(sample.valid, sample.target, np.nan)
        lim = (np.nanmin(gt), np.nanmax(gt))
        for j, (key, title, cmap) in enumerate(cols):
            ax = axes[i][j]
            ax.axis("off")
            if key == "input":
                ax.imshow(sample.image)
            else:
                img = gt if key == "target" else parts[key][0, 0].numpy()
                im = ax.imshow(img, cmap=cmap, **({"vmin": lim[0], "vmax": lim[1]} if key in ("depth", "target") else {}))
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_title(key if title is None else f"{key}\n{title}", fontsize=7)
    fig.suptitle("Semantic-to-depth unit (cf. the paper's Fig. 8): maps at stride 4, depth at full size", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
