"""A local web page to try a model: drop an image, see its depth map and its segmentation.

  sosd demo --checkpoint runs/esosd_indoor_small          # then open http://127.0.0.1:7860
  sosd demo --checkpoint runs/esosd_indoor_small --port 7861
  sosd demo --checkpoint path/to/pretrained-folder        # or a Hugging Face Hub id (sosd.hub)

The page shows, for an uploaded (or pasted) image of any size:

* the depth map (metres; disparity in px for street models), coloured, with a colour bar;
* the segmentation blended over the image, an opacity slider and a legend of the class names (with the
  share of the image each class covers);
* a read-out of the depth (or disparity) and the class at any pixel you click in either picture;
* example scenes from the procedural generator of the model's kind (indoor or street), written to a
  cache folder at start-up.

The model runs at its training resolution and its outputs are resized back to the image's size (as in
`sosd predict`). The server listens on --host (127.0.0.1 by default: this machine only); there is no
public share link. Stop it with Ctrl-C.

Without --checkpoint nothing is trained: the command prints, and the page shows, how to get a model
(`bash scripts/main.sh` trains one in a few minutes, then `sosd demo --checkpoint
runs/esosd_indoor_small`). Needs gradio 6 or newer: pip install 'sosd[demo]'.
"""
from __future__ import annotations

import argparse
import html
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from sosd.errors import SOSDError

DEFAULT_RUN = "runs/esosd_indoor_small"
DEFAULT_ALPHA = 0.55
READOUT_HINT = "Click the depth map or the segmentation to read the value and class there."
NUM_EXAMPLES = 4
EXAMPLE_SEED = 20240607  # not a training or validation seed

CSS = """
#sosd-colorbar .bar {height: 14px; border-radius: 3px; border: 1px solid #8886;}
#sosd-colorbar .ticks {display: flex; justify-content: space-between; font-size: 12px;
  font-variant-numeric: tabular-nums; margin-top: 2px;}
#sosd-colorbar .caption {font-size: 12px; opacity: .75; display: flex; justify-content: space-between;}
#sosd-legend .items {display: flex; flex-wrap: wrap; gap: 4px 12px; font-size: 13px;}
#sosd-legend .item {display: inline-flex; align-items: center; gap: 5px; white-space: nowrap;}
#sosd-legend .absent {opacity: .38;}
#sosd-legend .sw {width: 13px; height: 13px; border-radius: 2px; border: 1px solid #0005;
  display: inline-block;}
#sosd-readout {min-height: 2.4em; padding: 6px 12px; border-radius: 6px;
  border: 1px solid var(--block-border-color); background: var(--block-background-fill);}
.sosd-note {font-size: 13px; opacity: .8;}
"""


def no_checkpoint_message(root: Path | None = None) -> str:
    """What to do without a checkpoint (printed, and shown on the page)."""
    root = Path.cwd() if root is None else root
    found = (root / DEFAULT_RUN / "checkpoints" / "latest").is_file()
    lines = ["No model was given, so there is nothing to run (the demo trains nothing).", "",
             "To get one:"]
    if found:
        lines += [f"  a trained run is here already:  sosd demo --checkpoint {DEFAULT_RUN}"]
    lines += ["  1. train the small indoor model (a few minutes on a CPU):  bash scripts/main.sh",
              f"  2. start the demo with it:  sosd demo --checkpoint {DEFAULT_RUN}",
              "  (--checkpoint also takes any run or checkpoint folder, a model.safetensors file, a "
              "save_pretrained folder or a Hugging Face Hub id)"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- pictures

def example_preset(cfg) -> str:
    """The procedural preset that looks like the model's training data."""
    d = cfg.data
    if d.dataset == "synthetic":
        return d.preset
    return "street" if d.dataset == "cityscapes" else "indoor"


def example_images(preset: str, n: int = NUM_EXAMPLES, folder: str | Path | None = None,
                   height: int | None = None) -> list[Path]:
    """Write ``n`` procedural scenes of ``preset`` as PNGs (once; cached in ``folder``) and return them.
    Default size: 240 px high at the preset's native aspect ratio."""
    from PIL import Image

    from sosd.data.synthetic import preset_spec, render_scene

    hn, wn = preset_spec(preset).native_hw
    h = int(height or 240)
    w = max(1, round(h * wn / hn))
    folder = Path(folder) if folder else Path(tempfile.gettempdir()) / "sosd-demo-examples"
    folder = folder / f"{preset}-{h}x{w}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{preset}_scene_{i}.png"
        if not p.is_file():
            s = render_scene(preset, EXAMPLE_SEED, i, h, w)
            tmp = p.with_suffix(f".tmp{os.getpid()}.png")
            Image.fromarray(s.image).save(tmp)
            tmp.replace(p)
        paths.append(p)
    return paths


def _cmap(target_kind: str) -> str:
    return "plasma" if target_kind == "disparity" else "plasma_r"  # near = bright either way


def colorbar_html(lo: float, hi: float, target_kind: str, ticks: int = 5) -> str:
    """A horizontal colour bar (CSS gradient) from ``lo`` to ``hi`` with tick labels in m or px."""
    from sosd.viz import _colormap

    cm = _colormap(_cmap(target_kind))
    stops = ", ".join(f"rgb({int(r * 255)},{int(g * 255)},{int(b * 255)}) {100 * t:.0f}%"
                      for t in np.linspace(0, 1, 17) for r, g, b, _ in [cm(t)])
    nd = 2 if hi - lo < 5 else 1
    labels = "".join(f"<span>{v:.{nd}f}</span>" for v in np.linspace(lo, hi, ticks))
    name = "depth (m)" if target_kind == "depth" else "disparity (px)"
    near, far = ("near", "far") if target_kind == "depth" else ("far", "near")
    return (f'<div class="bar" style="background: linear-gradient(to right, {stops});"></div>'
            f'<div class="ticks">{labels}</div>'
            f'<div class="caption"><span>{near}</span><span>{name}, 1st-99th percentile</span>'
            f'<span>{far}</span></div>')


def legend_html(labels: np.ndarray | None, class_names: list[str]) -> str:
    """Colour swatch + name + share of the image per class; the classes present first, largest first."""
    from sosd.viz import palette

    k = len(class_names)
    pal = palette(k)
    share = (np.bincount(labels.ravel(), minlength=k)[:k] / labels.size) if labels is not None else np.zeros(k)
    order = sorted(range(k), key=lambda c: (-share[c], c))
    items = []
    for c in order:
        r, g, b = (int(v) for v in pal[c])
        pct = f" {100 * share[c]:.0f}%" if share[c] >= 0.005 else (" <1%" if share[c] > 0 else "")
        cls = "item" if share[c] > 0 else "item absent"
        items.append(f'<span class="{cls}"><span class="sw" style="background: rgb({r},{g},{b})"></span>'
                     f'{html.escape(class_names[c])}<small>{pct}</small></span>')
    return f'<div class="items">{"".join(items)}</div>'


def blend(image: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float) -> np.ndarray:
    """Class colours over ``image`` with opacity ``alpha`` (0 = the image, 1 = only the colours)."""
    from sosd.viz import colorize_labels

    col = colorize_labels(labels, num_classes).astype(np.float32)
    a = float(np.clip(alpha, 0.0, 1.0))
    return (image.astype(np.float32) * (1 - a) + col * a + 0.5).clip(0, 255).astype(np.uint8)


def _to_rgb(image) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.shape[2] == 4:  # RGBA: drop alpha over white
        rgb, al = a[..., :3].astype(np.float32), a[..., 3:].astype(np.float32) / 255
        a = (rgb * al + 255 * (1 - al)).round().astype(np.uint8)
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8)


def model_summary(predictor) -> str:
    cfg, m = predictor.cfg, predictor.cfg.model
    kind = "depth in metres" if predictor.target_kind == "depth" else "disparity in px"
    data = (f"procedural {cfg.data.preset} scenes" if cfg.data.dataset == "synthetic" else cfg.data.dataset)
    variant = "ESOSD-Net (sosd, EM)" if m.variant == "sosd" and cfg.train.strategy == "em" else m.variant
    return (f"**{html.escape(cfg.train.name)}**: {variant} · {m.backbone} backbone · trained at "
            f"{cfg.data.width}×{cfg.data.height} px on {data} · {kind} · {m.num_classes} classes")


# ------------------------------------------------------------------------------------------------ app

class _Runner:
    """The page's callbacks around one predictor (kept apart from gradio for testing)."""

    def __init__(self, predictor):
        self.p = predictor
        self.k = predictor.cfg.model.num_classes

    def predict(self, image, alpha):
        """-> state, depth picture, colour bar, depth note, overlay, legend, read-out."""
        if image is None:
            return None, None, "", "", None, legend_html(None, self.p.class_names), ""
        from sosd.viz import colorize_depth, depth_range

        img = _to_rgb(image)
        t0 = time.perf_counter()
        out = self.p.predict(img)
        dt = time.perf_counter() - t0
        depth_pic = bar = note = overlay = None
        if out.depth is not None:
            lo, hi = depth_range(out.depth)
            depth_pic = colorize_depth(out.depth, vmin=lo, vmax=hi, cmap=_cmap(out.target_kind))
            bar = colorbar_html(lo, hi, out.target_kind)
            unit = "m" if out.target_kind == "depth" else "px"
            note = (f'<div class="sosd-note">{out.target_kind}: median {np.median(out.depth):.2f} {unit}, '
                    f'min {out.depth.min():.2f}, max {out.depth.max():.2f} · image '
                    f'{img.shape[1]}×{img.shape[0]} px, run at {self.p.size[1]}×{self.p.size[0]} '
                    f'in {dt:.2f} s</div>')
        if out.labels is not None:
            overlay = blend(img, out.labels, self.k, alpha)
        state = {"image": img, "depth": out.depth, "labels": out.labels, "kind": out.target_kind}
        readout = READOUT_HINT
        legend = legend_html(out.labels, self.p.class_names)
        return state, depth_pic, bar or "", note or "", overlay, legend, readout

    def reblend(self, state, alpha):
        if not state or state.get("labels") is None:
            return None
        return blend(state["image"], state["labels"], self.k, alpha)

    def readout(self, state, index) -> str:
        if not state or index is None:
            return "Upload an image first."
        x, y = (int(round(float(v))) for v in index[:2])
        ref = state["depth"] if state.get("depth") is not None else state["labels"]
        h, w = ref.shape
        x, y = min(max(x, 0), w - 1), min(max(y, 0), h - 1)
        parts = [f"pixel (x={x}, y={y})"]
        if state.get("depth") is not None:
            v = float(state["depth"][y, x])
            parts.append(f"depth **{v:.2f} m**" if state["kind"] == "depth" else f"disparity **{v:.2f} px**")
        if state.get("labels") is not None:
            parts.append(f"class **{self.p.class_names[int(state['labels'][y, x])]}**")
        return " · ".join(parts)


def _theme():
    import gradio as gr

    return gr.themes.Default(primary_hue="indigo", secondary_hue="blue", neutral_hue="slate")


def build_app(predictor, examples: list[str | Path] | None = None, example_dir: str | Path | None = None):
    """The page (a ``gr.Blocks``) for ``predictor`` (a :class:`sosd.inference.Predictor`), or, for
    ``None``, a page that says how to get a model. ``examples``: image paths to offer (default: procedural
    scenes like the model's training data, written under ``example_dir`` or the temp folder). Launch it
    with :func:`launch`."""
    import gradio as gr

    with gr.Blocks(title="SOSD-Net demo", analytics_enabled=False) as app:
        gr.Markdown("# SOSD-Net: depth and semantic segmentation from one image")
        if predictor is None:
            msg = no_checkpoint_message()
            gr.Markdown("No model loaded.", elem_id="sosd-status")
            gr.Code(msg, language=None, label="How to get a model", elem_id="sosd-no-checkpoint")
            app.sosd_allowed_paths = []
            return app

        run = _Runner(predictor)
        has_depth = predictor.model.has_depth
        has_sem = predictor.model.has_semantic
        if examples is None:
            examples = example_images(example_preset(predictor.cfg), folder=example_dir)
        examples = [str(p) for p in examples]
        app.sosd_allowed_paths = sorted({str(Path(p).resolve().parent) for p in examples})
        gr.Markdown(model_summary(predictor), elem_id="sosd-status")
        state = gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=300):
                inp = gr.Image(type="numpy", label="Image (drop, upload or paste)",
                               sources=["upload", "clipboard"], image_mode="RGB", height=300,
                               elem_id="sosd-input")
                if examples:
                    gr.Examples([[p] for p in examples], inputs=[inp], label="Example scenes (procedural, "
                                "like the training data)", examples_per_page=8, elem_id="sosd-examples")
            with gr.Column(scale=1, min_width=300, visible=has_depth):
                depth = gr.Image(label="Depth (m)" if predictor.target_kind == "depth" else "Disparity (px)",
                                 type="numpy", format="png", interactive=False, height=300,
                                 buttons=["download", "fullscreen"], elem_id="sosd-depth")
                bar = gr.HTML("", elem_id="sosd-colorbar")
                note = gr.HTML("", elem_id="sosd-depth-note")
            with gr.Column(scale=1, min_width=300, visible=has_sem):
                overlay = gr.Image(label="Segmentation over the image", type="numpy", format="png",
                                   interactive=False, height=300, buttons=["download", "fullscreen"],
                                   elem_id="sosd-overlay")
                alpha = gr.Slider(0.0, 1.0, value=DEFAULT_ALPHA, step=0.05, label="Label opacity",
                                  elem_id="sosd-alpha")
                legend = gr.HTML(legend_html(None, predictor.class_names), elem_id="sosd-legend")
        readout = gr.Markdown("Drop an image or pick an example scene, then click the depth map or the "
                              "segmentation to read the value and class there.", elem_id="sosd-readout")

        outputs = [state, depth, bar, note, overlay, legend, readout]
        inp.change(run.predict, [inp, alpha], outputs, api_name="predict", show_progress="minimal")
        alpha.change(run.reblend, [state, alpha], [overlay], api_visibility="private", show_progress="hidden")

        def on_select(st, evt):
            return run.readout(st, evt.index)

        on_select.__annotations__["evt"] = gr.SelectData  # a real class (this module's annotations are strings)

        depth.select(on_select, [state], [readout], api_visibility="private", show_progress="hidden")
        overlay.select(on_select, [state], [readout], api_visibility="private", show_progress="hidden")
    return app


def launch(app, host: str = "127.0.0.1", port: int | None = 7860, block: bool = True, quiet: bool = False):
    """Serve ``app`` (from :func:`build_app`) on ``host:port``; no share link, no telemetry. With
    ``block=False`` it returns at once (call ``app.close()`` to stop). Returns the local URL."""
    try:
        _, url, _ = app.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                               prevent_thread_lock=not block, quiet=quiet, show_error=True, ssr_mode=False,
                               mcp_server=False, allowed_paths=getattr(app, "sosd_allowed_paths", []),
                               theme=_theme(), css=CSS, footer_links=["gradio", "settings"])
    except OSError as e:
        raise SOSDError(f"cannot serve on {host}:{port} ({e}); pass another --port") from None
    return url


# ------------------------------------------------------------------------------------------------ CLI

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="CKPT", default=None,
                   help="run folder, checkpoint folder, model.safetensors, save_pretrained folder or Hugging "
                        "Face Hub id (without it the page only says how to get a model)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")


def run(args) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio
    except ImportError:
        raise SOSDError("the demo needs gradio: pip install 'sosd[demo]'") from None
    if int(gradio.__version__.split(".")[0]) < 6:
        raise SOSDError(f"the demo needs gradio 6 or newer, this is {gradio.__version__}: "
                        "pip install -U 'sosd[demo]'")
    predictor = None
    if args.checkpoint:
        from sosd.hub import from_pretrained

        predictor = from_pretrained(args.checkpoint, args.device)
        print(f"sosd demo: {args.checkpoint}: {model_summary(predictor).replace('**', '')}", flush=True)
    else:
        print(no_checkpoint_message(), flush=True)
    app = build_app(predictor)
    print(f"sosd demo: open http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
    launch(app, args.host, args.port, block=True, quiet=True)
    return 0
