"""The page: a Picture tab, a Video tab and a Stereo tab on top of DepthService (service.py).

Imported only by server.py, after it has set Gradio's environment (temp folder, no analytics).
"""

import sys
from pathlib import Path

import gradio as gr
from gradio.processing_utils import check_all_files_in_cache

from ..errors import first_line
from ..io.colormaps import COLORMAPS
from ..predict import MAX_NETWORK_SIDE
from .service import KEEP_ASPECT, MAX_KNOWN_POINTS, SQUARE, STEREO_PAGE_FORMATS, DepthService, UploadError

EXAMPLES = Path(__file__).resolve().parent / "examples"  # package data (scripts/make_examples.py writes them)
API_IMAGE, API_VIDEO, API_STEREO = "depth", "video_depth", "stereo"
API_METRIC = "metric_depth"  # the Metric box: the picture and its known points -> metric depth and camera
# System fonts only: the default theme would ask Google Fonts for its fonts (the page must work offline).
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def uploaded_image(**options) -> gr.Image:
    """gr.Image that hands over the uploaded file as it was sent. gr.Image itself opens it with
    Pillow first, so a damaged or foreign file would fail inside Gradio with Pillow's message;
    here read_image decodes it exactly as `muggled-swinv2 image` does, and says what is wrong.
    (The instance's preprocess is replaced: a subclass would make Gradio write a .pyi stub file
    beside this module.)"""
    image = gr.Image(type="filepath", image_mode=None, **options)
    gradio_preprocess = image.preprocess

    def preprocess(payload):
        if payload is not None and payload.path:
            return str(payload.path)
        if payload is not None and not payload.url:
            raise refusal("upload: no file in the request; upload it first (gradio_client's handle_file does)")
        return gradio_preprocess(payload)  # pasted data: URLs, decoded by Gradio

    image.preprocess = preprocess
    return image


def example_files() -> list[list[str]]:
    if not EXAMPLES.is_dir():
        return []
    return [[str(path)] for path in sorted(EXAMPLES.iterdir()) if path.suffix.lower() in (".jpg", ".jpeg", ".png")]


def refusal(message: str) -> gr.Error:
    """A refused request: its one-line reason for the page (or the API client), and the same line,
    not a traceback, in the server's log."""
    print(f"refused: {message}", file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def page_error(error: UploadError) -> gr.Error:
    return refusal(str(error))


def one_line_errors(component, name: str):
    """The component refuses a value in one line naming the parameter `name` (as the API page
    names it). Gradio would log a traceback for its own refusals ("not in the list of choices"), and
    for any other exception (a text for a number) also send the client {"error": null}."""
    gradio_preprocess = component.preprocess

    def preprocess(payload):
        if isinstance(component, gr.Number) and payload is not None and (
                isinstance(payload, bool) or not isinstance(payload, (int, float))):
            raise refusal(f"{name}: {payload!r:.60} is not a number")
        try:
            return gradio_preprocess(payload)
        except gr.Error as error:  # Gradio's own ("not in the list of choices"); ours are already logged
            if not error.print_exception:
                raise
            raise refusal(f"{name}: {error.message}") from None
        except Exception as error:
            raise refusal(f"{name}: cannot take {payload!r:.60} ({first_line(error)})") from None

    component.preprocess = preprocess
    return component


def refuse_in_one_line(demo: gr.Blocks):
    """Every request the app refuses before running it gets the page's one-line reason, with no
    traceback in the server log: a file that was not uploaded to this server (Gradio would read any
    path of this machine named in an API call), and a payload Gradio cannot parse. The values
    themselves are checked by their components (one_line_errors)."""
    preprocess_data = demo.preprocess_data

    async def checked(block_fn, inputs, *args, **kwargs):
        try:
            check_all_files_in_cache(inputs)
            return await preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error as error:
            if not error.print_exception:
                raise
            raise refusal(error.message) from None
        except Exception as error:
            raise refusal(f"A request this app cannot read ({first_line(error)})") from None

    demo.preprocess_data = checked


def stereo_tab(service: DepthService) -> None:
    """The Stereo tab: a picture or a video -> side by side, anaglyph, ... (jobs/stereo.py through
    service.stereo), a picture's anaglyph as the preview, the files to download."""

    def stereo_of(upload, format, divergence, convergence, auto, progress=gr.Progress(track_tqdm=True)):
        if upload is None:
            raise refusal("Upload a picture or a video first.")
        try:
            result = service.stereo(upload, format, divergence, convergence, auto)
        except UploadError as error:
            raise page_error(error) from None
        status = f"Stereo in {result.seconds:.2f} s. {result.comfort}"
        return [str(result.preview) if result.preview else None, str(result.video) if result.video else None,
                [str(path) for path in result.downloads], status]

    with gr.Tab("Stereo"):
        with gr.Row():
            with gr.Column():
                upload = one_line_errors(gr.File(label="Picture or video", file_count="single", type="filepath",
                                                 elem_id="stereo-upload"), "upload")
                format = one_line_errors(gr.Dropdown(list(STEREO_PAGE_FORMATS), value="half-sbs", label="Format "
                                                     "(half-sbs: 3D TVs and headsets; anaglyph: red-cyan glasses)"), "format")
                auto = one_line_errors(gr.Checkbox(True, label="Strength chosen within comfort (auto)"), "auto")
                divergence = one_line_errors(gr.Slider(0.5, 10, value=2, step=0.5, label="Divergence, % of the width "
                                                       "(when not auto)"), "divergence")
                convergence = one_line_errors(gr.Slider(0, 1, value=0.5, step=0.05, label="Convergence: 0 all behind "
                                                        "the screen ... 1 all in front (when not auto)"), "convergence")
                run = gr.Button("Make stereo", variant="primary", elem_id="stereo-run")
            with gr.Column():
                preview = gr.Image(label="Preview (anaglyph)", type="filepath", interactive=False, elem_id="stereo-preview")
                video = gr.Video(label="Stereo video", interactive=False, elem_id="stereo-video")
                files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="stereo-downloads")
                status = gr.Markdown(elem_id="stereo-status")
        run.click(stereo_of, [upload, format, divergence, convergence, auto], [preview, video, files, status],
                  api_name=API_STEREO, concurrency_id="model")


# ----------------------------------------------------------------------------- the Metric box (docs/metric.md)


def metric_box() -> dict:
    """The Picture tab's Metric box: a known points table that clicks on the depth picture fill
    (x, y, and z from the distance field when given; z can be typed in the table), the fit and
    camera, the button, the readout of the clicked pixel's metric depth and the fit's summary.
    Its components by name; `state` holds the server's path of the last metric depth (.npy)."""
    with gr.Accordion("Metric depth: click the depth picture where you know the distance", open=True):
        distance = gr.Number(None, minimum=0, label="Distance of the next clicked point (m): or type it in z below",
                             elem_id="known-distance")
        table = gr.Dataframe(headers=["x", "y", "z (m)"], datatype=["number", "number", "number"], column_count=3,
                             row_limits=(None, MAX_KNOWN_POINTS), type="array", interactive=True, value=[],
                             label="Known points: pixel column x, row y, distance z in metres along the camera's axis",
                             elem_id="known-points")
        with gr.Row():
            fit = gr.Radio(["affine", "scale"], value="affine", label="Fit (scale: shift 0, 1 point is enough)")
            fov = gr.Number(0, minimum=0, maximum=179, label="Horizontal field of view, degrees (0 = EXIF, else 60)")
        button = gr.Button("Fit metric depth", elem_id="fit-metric")
        readout = gr.Markdown(elem_id="metric-readout")
        summary = gr.Markdown(elem_id="metric-status")
    return {"distance": one_line_errors(distance, "distance"), "table": one_line_errors(table, "points"),
            "fit": one_line_errors(fit, "fit"), "fov": one_line_errors(fov, "fov"), "button": button,
            "readout": readout, "summary": summary, "state": gr.State(None)}


def known_rows(rows) -> list[list]:
    """The table's rows less the blank ones (an empty table comes back as one blank row)."""
    return [list(row) for row in (rows or []) if any(cell not in (None, "") for cell in row)]


def wire_metric(service: DepthService, box: dict, picture, settings: list, depth, files, model3d):
    """The Metric box's events: a click on the depth picture adds a point and reads the depth
    there; the button fits (API `metric_depth`) and offers the downloads; a new picture clears it."""

    def clicked(rows, distance, depth_file, event: gr.SelectData):
        x, y = (int(value) for value in event.index)
        rows = known_rows(rows)
        if len(rows) >= MAX_KNOWN_POINTS:
            raise refusal(f"This server takes up to {MAX_KNOWN_POINTS} known points.")
        rows.append([x, y, distance if distance else None])
        reading = service.readout(depth_file, x, y) if depth_file else ""
        return rows, reading or f"Pixel ({x}, {y}) added: type its distance in z."

    def fit_metric(upload, colormap, mode, size, rows, fit, fov):
        if upload is None:
            raise refusal("Upload a picture first (or pick an example below it).")
        try:
            result = service.metric(upload, known_rows(rows), fit, fov, colormap, mode, size)
        except UploadError as error:
            raise page_error(error) from None
        status = (f"{result.summary}. Downloads: the metric depth in metres (`_metric.npy`, NaN = none), in "
                  f"millimetres (`_metric_mm.png`, 0 = none), the camera (`_camera.json`); the mesh is in metres.")
        return [str(path) for path in result.downloads], status, str(result.metric_npy), str(result.model3d), ""

    depth.select(clicked, [box["table"], box["distance"], box["state"]], [box["table"], box["readout"]],
                 api_visibility="private")
    box["button"].click(fit_metric, [picture, *settings, box["table"], box["fit"], box["fov"]],
                        [files, box["summary"], box["state"], model3d, box["readout"]], api_name=API_METRIC,
                        concurrency_id="model")
    picture.change(lambda: ([], None, "", ""), None, [box["table"], box["state"], box["readout"], box["summary"]],
                   api_visibility="private")


def build_app(service: DepthService) -> gr.Blocks:
    def depth_of_picture(upload, colormap, mode, size):
        if upload is None:
            raise refusal("Upload a picture first (or pick an example below it).")
        try:
            result = service.image(upload, colormap, mode, size)
        except UploadError as error:
            raise page_error(error) from None
        status = f"Depth in {result.seconds:.2f} s. Downloads: colour PNG, 16-bit PNG, float32 `.npy` (bigger = nearer)."
        return [result.depth_png, (str(result.photo), str(result.depth_png)), [str(path) for path in result.downloads], status,
                str(result.model3d)]

    def depth_on_change(upload, colormap, mode, size):
        if upload is None:  # the picture was cleared
            return [None, None, None, "", None]
        return depth_of_picture(upload, colormap, mode, size)

    def depth_of_video(upload, colormap, mode, size, side_by_side, progress=gr.Progress(track_tqdm=True)):
        if upload is None:
            raise refusal("Upload a video first.")
        progress(0, desc="Reading the video")
        try:
            return str(service.video(upload, colormap, mode, size, side_by_side))
        except UploadError as error:
            raise page_error(error) from None

    with gr.Blocks(title="muggled_swinv2: depth", delete_cache=(300, 900)) as demo:
        gr.Markdown("# Depth from one picture\nSwinV2-DPT (MiDaS v3.1) relative inverse depth: bright = near.")
        gr.Markdown(service.info.line(), elem_id="model-info")
        with gr.Tab("Picture"):
            with gr.Row():
                with gr.Column():
                    picture = one_line_errors(uploaded_image(label="Picture", sources=["upload", "clipboard"], elem_id="picture"),
                                              "upload")
                    colormap = one_line_errors(gr.Dropdown(list(COLORMAPS), value="inferno", label="Colour map"), "colormap")
                    mode = one_line_errors(gr.Radio([KEEP_ASPECT, SQUARE], value=KEEP_ASPECT, label="Preprocessing"), "mode")
                    size = one_line_errors(gr.Number(0, precision=0, minimum=0, maximum=MAX_NETWORK_SIDE, step=32, label="Long side fed to the network, "
                                                     "aspect mode (0 = the model's native size)"), "size")
                    run = gr.Button("Estimate depth", variant="primary")
                    if example_files():
                        gr.Examples(example_files(), inputs=picture, label="Examples")
                with gr.Column():
                    with gr.Tab("Depth"):
                        depth = gr.Image(label="Depth", type="filepath", interactive=False, elem_id="depth")
                    with gr.Tab("Before / after"):
                        slider = gr.ImageSlider(label="Picture | depth", type="filepath", interactive=False)
                    with gr.Tab("3D"):
                        model3d = gr.Model3D(label="Point cloud", interactive=False)
                    files = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
                    status = gr.Markdown(elem_id="status")
                    metric = metric_box()
            outputs = [depth, slider, files, status, model3d]
            inputs = [picture, colormap, mode, size]
            run.click(depth_of_picture, inputs, outputs, api_name=API_IMAGE, concurrency_id="model")
            picture.change(depth_on_change, inputs, outputs, api_visibility="private", concurrency_id="model")
            wire_metric(service, metric, picture, [colormap, mode, size], depth, files, model3d)
        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column():
                    video = one_line_errors(gr.Video(label="Video", sources=["upload"], elem_id="video"), "upload")
                    video_colormap = one_line_errors(gr.Dropdown(list(COLORMAPS), value="inferno", label="Colour map"), "colormap")
                    video_mode = one_line_errors(gr.Radio([KEEP_ASPECT, SQUARE], value=KEEP_ASPECT, label="Preprocessing"), "mode")
                    video_size = one_line_errors(gr.Number(0, precision=0, minimum=0, maximum=MAX_NETWORK_SIDE, step=32,
                                                           label="Long side fed to the network (0 = native)"), "size")
                    side_by_side = one_line_errors(gr.Checkbox(False, label="Video beside its depth"), "side_by_side")
                    run_video = gr.Button("Depth video", variant="primary")
                depth_video = gr.Video(label="Depth video", interactive=False, elem_id="depth-video")
            run_video.click(depth_of_video, [video, video_colormap, video_mode, video_size, side_by_side], depth_video,
                            api_name=API_VIDEO, concurrency_id="model")
        stereo_tab(service)
        gr.Markdown(service.limits.line() + " Requests wait in a queue and run one at a time.", elem_id="limits")
    refuse_in_one_line(demo)
    return demo
