"""Record the reference level in a checkpoint trained before train.py recorded it, so convert.py --level-match
and evaluate.py --level-match can use it.

    uv run experiments/record_reference_level.py --checkpoint pretrained/pop2jazz.pt --data data/bundled

The reference is what train.py records for every new run (train.reference_level): the median level
(spectrogram.image_level_db) of every chunk in <data>/pop_train and <data>/jazz_train, which must be the data the
checkpoint was trained on. The file gets its model config's reference_level_db and nothing else: the weights,
and whether conversion matches the level by default (level_match), stay. It is rewritten atomically
(checkpoint.save_checkpoint); --output writes a copy instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import train  # noqa: E402
from pop2jazz.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pop2jazz.commands import run_command  # noqa: E402
from pop2jazz.dataset import ChunkFolder, DataError  # noqa: E402
from pop2jazz.spectrogram import Representation  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a train.py checkpoint or generators.pt")
    parser.add_argument("--data", type=Path, required=True, help="the audio_preprocessing.py output it was "
                        "trained on (pop_train/ and jazz_train/)")
    parser.add_argument("-o", "--output", type=Path, help="write the result here instead of replacing --checkpoint")
    return parser.parse_args(argv)


def record(args: argparse.Namespace) -> int:
    """Load, measure, save; 0 when written."""
    state = load_checkpoint(args.checkpoint, kind="cyclegan")
    folders = [ChunkFolder(args.data / name) for name in ("pop_train", "jazz_train")]
    if any(folder.representation != Representation.from_dict(state["representation"]) for folder in folders):
        raise DataError(f"{args.data} was made with other spectrogram settings than {args.checkpoint}: pass the "
                        f"data it was trained on")
    reference = train.reference_level(folders)
    state["model"] = {**state["model"], "reference_level_db": reference}
    output = args.output or args.checkpoint
    save_checkpoint(output, {key: value for key, value in state.items() if key != "format"},
                    replace=args.output is None)
    print(f"{output}: reference level {reference:.2f} dB (the median of {sum(map(len, folders))} training chunks); "
          f"convert with --level-match to use it")
    return 0


if __name__ == "__main__":
    sys.exit(run_command(record, parse_args()))
