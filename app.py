"""Convert a song in the browser: drop a song (the bundled example is there to start with), choose the direction
and the model, press Convert; the page plays the song and its conversion one above the other, shows their
spectrograms and offers the converted file for download.

    uv run --extra web app.py                        # http://127.0.0.1:7860, on this computer only
    uv run --extra web app.py --port 8080 --max-upload-mb 20
    uv run --extra web app.py --host 0.0.0.0         # also reachable from other machines (no password: a trusted
                                                     # network only)

The page converts as convert.py does, with the same functions (pop2jazz/jobs.py): the same checks before any
work (a file pop2jazz wrote itself is refused unless allowed), the same streaming conversion with Griffin-Lim from
the song's phase, the same before/after picture, the same one-line errors, shown on the page (an unreadable or
empty file never shows a traceback). The models offered are the bundled one and every train.py run under
checkpoints/ (re-read when the page loads, so a run still training converts with its latest epoch). Uploads
above --max-upload-mb are refused. Uploads and conversions are kept in one temporary folder, removed when the app
stops (Ctrl-C or SIGTERM); nothing else is written. Gradio is an optional dependency (the "web" extra), so plain
`uv run convert.py` does not install it.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from pop2jazz.checkpoint import BUNDLED_MODEL, DIRECTIONS
from pop2jazz.commands import TERMINATION_SIGNALS, int_range, non_negative_int, positive_float, run_command
from pop2jazz.compute import pick_device
from pop2jazz.dataset import EXAMPLE_SONG
from pop2jazz.errors import InputError, ServeError, UserError
from pop2jazz.jobs import (
    GRIFFIN_LIM_ITERS,
    ConversionOptions,
    load_model,
    output_path_for,
    plan,
    plot_conversion,
    run_job,
)
from pop2jazz.runs import CHECKPOINTS, DEFAULT_RUN, LATEST, find_checkpoint, list_runs

UPLOADS = "uploads"  # below the app's temporary folder: where Gradio keeps uploads and the files it serves


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on: 127.0.0.1 is this computer only; 0.0.0.0 is "
        "every network the computer is on, for anyone who can reach it (default: 127.0.0.1)")
    add("--port", type=int_range(1, 65535), default=7860, help="port to listen on (default: 7860)")
    add("--max-upload-mb", type=positive_float, default=100,
        help="larger uploads are refused; 100 MB is about 10 minutes "
        "of CD-quality WAV (default: 100)")
    add("--griffin-lim-iters", type=non_negative_int, default=GRIFFIN_LIM_ITERS,
        help="Griffin-Lim iterations from the source "
        f"phase, as in convert.py (default: {GRIFFIN_LIM_ITERS})")
    add("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    args = parser.parse_args(argv)
    return args


def model_choices() -> list[tuple[str, str]]:
    """(label, checkpoint path) of every model the page offers: the bundled one, then each run under
    checkpoints/ that has a latest.pt, in name order."""
    choices = [(f"bundled model (pretrained/{BUNDLED_MODEL.name})", str(BUNDLED_MODEL))] if BUNDLED_MODEL.is_file() \
        else []
    return choices + [(f"run {name} ({CHECKPOINTS / name / LATEST})", str(CHECKPOINTS / name / LATEST))
                      for name in list_runs()]


def default_model() -> str | None:
    """The checkpoint convert.py uses without --name or --checkpoint (find_checkpoint); when there is none, the
    first of model_choices (a named run); None when there is no model at all."""
    try:
        return str(find_checkpoint(DEFAULT_RUN))
    except FileNotFoundError:
        choices = model_choices()
        return choices[0][1] if choices else None


def with_file_names(text: str, paths: list[Path]) -> str:
    """`text` with each of `paths` (an upload, an output in the temporary folder) replaced by its file name: the
    page names files as the user knows them, not by the temporary folders they sit in."""
    for path in sorted(paths, key=lambda path: -len(str(path))):
        text = text.replace(str(path), path.name)
    return text


def status(lines: list[str], error: bool = False) -> str:
    """The page's status box as HTML: `lines` escaped, one under the other; an error marked as one."""
    text = "<br>".join(html.escape(line) for line in lines)
    return f'<p class="status {"error" if error else "done"}">{"error: " if error else ""}{text}</p>'


def convert_song(song: str | None, direction: str, model: str | None, allow_converted: bool,
                 args: argparse.Namespace, progress=None, strength: float = 1.0, level_match: bool = False
                 ) -> tuple[str, str | None, str | None, str | None]:
    """Convert the song at `song` (an upload) with the checkpoint `model` into a new folder below args.work.

    The pop2jazz.jobs functions convert.py uses, with its options: plan (every check before any work), run_job
    (the streaming conversion, WAV out), plot_conversion (the first 30 s before and after). Returns (status HTML,
    converted WAV, spectrogram PNG, file to download); on any error the status says it in one line and the
    rest is None. `progress` (gradio.Progress, or None) is told each stage; the conversion's own progress bar
    reaches the page through Gradio's tqdm tracking. `strength` (0-1): convert.py --strength, the slider.
    `level_match`: convert.py --level-match, the box; unticked, the model converts as it was trained.
    """
    report = progress or (lambda *_, **__: None)
    if not song:
        return status(["no song: drop an audio file on the song box (or reload the page for the example)"], True), \
            None, None, None
    song = Path(song)
    if model not in {path for _, path in model_choices()}:  # the page's own list only, not any path sent to it
        return status([f"no such model: {model}; reload the page for the list of models"], True), None, None, None
    folder = Path(tempfile.mkdtemp(prefix="conversion-", dir=args.work))  # one per conversion: none clash
    options = ConversionOptions((song,), direction, output=output_path_for(song, direction, "wav", folder),
                                griffin_lim_iters=args.griffin_lim_iters, plot=True, allow_converted=allow_converted,
                                strength=min(1.0, max(0.0, float(strength))))  # a page's value, clamped
    try:
        report(0.0, desc="loading the model")
        loaded = load_model(Path(model), direction, args.device, level_match or None)
        jobs, errors = plan(options, loaded.rep)
        if errors or not jobs:
            raise InputError(errors[0] if errors else f"{song}: nothing to convert")
        job = jobs[0]
        report(0.05, desc="converting")
        converted = run_job(loaded.generator, job, loaded.rep, options,
                            {"tool": "app.py", "direction": direction, "checkpoint": model})
        report(0.95, desc="drawing the spectrograms")
        picture = plot_conversion(job, loaded.rep, direction)
    except UserError as error:
        return status([with_file_names(str(error).splitlines()[0], [song, folder])], True), None, None, None
    lines = [f"using {loaded.description}", converted.summary(job),
             *(f"warning: {warning}" for warning in converted.warnings)]
    output = str(job.output)
    return status([with_file_names(line, [song, job.output]) for line in lines]), output, str(picture), output


CSS = """
.status.error { color: #b91c1c; font-weight: 600; }
.status.done { color: #166534; }
"""


def build_page(args: argparse.Namespace):
    """The page as a gradio.Blocks: controls on the left, the two players and the spectrograms on the right."""
    import gradio as gr  # only here: GRADIO_TEMP_DIR must be set before Gradio reads it at import (see serve)

    def convert_clicked(song, direction, model, strength, level_match, allow_converted,
                        progress=gr.Progress(track_tqdm=True)):
        text, audio, picture, download = convert_song(song, direction, model, allow_converted, args, progress,
                                                      strength, bool(level_match))
        return text, audio, picture, gr.DownloadButton(value=download, visible=download is not None)

    with gr.Blocks(title="pop2jazz", analytics_enabled=False) as page:
        gr.Markdown("# pop2jazz\nA CycleGAN turns pop into jazz (and jazz into pop) on spectrograms. Drop a song, or "
                    "keep the example, and press **Convert**.")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                direction = gr.Radio(list(DIRECTIONS), value="pop2jazz", label="direction")
                model = gr.Dropdown(model_choices(), value=default_model(), label="model",
                                    info="the bundled model, or a train.py run under checkpoints/")
                strength = gr.Slider(0.0, 1.0, value=1.0, step=0.05, label="strength", elem_id="strength",
                                     info="0 gives the song back, 1 the full conversion (convert.py --strength)")
                level_match = gr.Checkbox(False, label="level match, for loud modern songs", elem_id="level-match",
                                          info="convert.py --level-match: the model hears each window at its "
                                               "training level, so loud parts are not wiped out; with strength 0.6 "
                                               "almost no holes (README)")
                allow_converted = gr.Checkbox(False, label="also convert a file pop2jazz wrote itself",
                                              info="convert.py --allow-converted: a copy of a copy")
                button = gr.Button("Convert", variant="primary")
                message = gr.HTML(elem_id="status")
                download = gr.DownloadButton("Download the converted song", visible=False, elem_id="download")
            with gr.Column(scale=2):
                # the browser's own <audio> players: plain, exact, and what a test can ask for the duration
                players = gr.WaveformOptions(show_recording_waveform=False)
                song = gr.Audio(str(EXAMPLE_SONG), sources=["upload"], type="filepath", label="song",
                                elem_id="song", buttons=["download"], waveform_options=players)
                output = gr.Audio(type="filepath", label="converted", interactive=False, elem_id="converted",
                                  buttons=["download"], waveform_options=players)
                picture = gr.Image(type="filepath", label="spectrograms: the song above, its conversion below",
                                   show_label=False, interactive=False, elem_id="spectrograms", buttons=["download"])
        # one conversion at a time: each takes every core it can
        button.click(convert_clicked, [song, direction, model, strength, level_match, allow_converted],
                     [message, output, picture, download], concurrency_limit=1)
        song.change(lambda: ("", None, None, gr.DownloadButton(visible=False)), None,
                    [message, output, picture, download])  # no stale conversion beside a new song
        page.load(lambda: gr.Dropdown(choices=model_choices()), None, model)  # runs trained since the start
    return page


def serve(args: argparse.Namespace) -> int:
    """Run the page until Ctrl-C or SIGTERM (see main); everything it writes stays in one temporary folder."""
    with tempfile.TemporaryDirectory(prefix="pop2jazz-app-") as work:
        args.work = Path(work)
        # Gradio keeps uploads and served files in GRADIO_TEMP_DIR (default /tmp/gradio, shared and never emptied)
        os.environ["GRADIO_TEMP_DIR"] = str(args.work / UPLOADS)
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from a local tool
        if importlib.util.find_spec("gradio") is None:  # the optional dependency
            print("error: app.py needs Gradio, one of the optional 'web' dependencies: run it as "
                  "`uv run --extra web app.py`", file=sys.stderr)
            return 1
        args.device = pick_device(args.device)
        page = build_page(args)
        page.queue(default_concurrency_limit=1)
        try:
            page.launch(server_name=args.host, server_port=args.port, max_file_size=int(args.max_upload_mb * 2**20),
                        prevent_thread_lock=True, quiet=True, footer_links=[], run_history=False,
                        enable_monitoring=False, mcp_server=False, ssr_mode=False, css=CSS,
                        allowed_paths=[str(EXAMPLE_SONG)])
        except OSError as error:  # Gradio's own words name its settings, not our flags
            raise ServeError(f"cannot listen on {args.host}:{args.port} ({str(error).split('. ')[0]}): the port is "
                          f"taken or not allowed; pass another --port") from error
        print(f"pop2jazz page at http://{args.host}:{args.port} (Ctrl-C to stop)", flush=True)
        try:
            while True:  # Gradio serves from its own threads; here, signals stop it the way they stop every tool
                time.sleep(0.5)
        finally:
            for number in (signal.SIGINT, *TERMINATION_SIGNALS):  # a second Ctrl-C or kill must not cut the clean-up
                signal.signal(number, signal.SIG_IGN)
            page.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: 1 when Gradio is missing or the port is taken, 130 / 143 when stopped with
    Ctrl-C / SIGTERM (the usual way to stop it; the temporary folder is removed either way)."""
    return run_command(serve, parse_args(argv), interrupted="the page is stopped")


if __name__ == "__main__":
    sys.exit(main())
