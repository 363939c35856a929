"""Convert musicnn's MSD_musicnn TensorFlow checkpoint into pretrained/musicnn_msd.pt, once, and record the original
model's outputs on two shared clips as tests/fixtures/musicnn_reference.json (what tests/test_tagger.py checks
the PyTorch port against). Run with TensorFlow brought in for this run only; the project never needs it:

    python3 -m venv /tmp/tfenv && /tmp/tfenv/bin/pip install tensorflow-cpu tf_keras librosa soundfile torch
    /tmp/tfenv/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/tfenv/bin/python experiments/convert_musicnn.py --clips ../shared/audio/gtzan_mini

musicnn 0.1.0 (PyPI; Pons & Serra 2019, ISC licence) ships the checkpoint in its wheel at musicnn/MSD_musicnn/
(files named .index, .data-00000-of-00001: the checkpoint prefix is the folder itself). The variables are read
with TensorFlow's checkpoint reader; for the reference, musicnn's own models.build_musicnn is built in a
TensorFlow 1 graph and restored, and fed the log-mel of musicnn's extractor.batch_data (librosa.load at 16 kHz,
librosa.feature.melspectrogram, log10(10000 x + 1), non-overlapping 187-frame patches) computed in float32:
musicnn casts the mel power to float16 first, which overflows on loud songs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pop2jazz import tagger  # noqa: E402

CLIPS = ("pop/pop.00000.wav", "jazz/jazz.00000.wav")  # relative to --clips


def torch_state(reader) -> dict[str, torch.Tensor]:
    """The checkpoint's variables as tagger.Musicnn's state_dict. TensorFlow names the layers by creation order:
    batch_normalization (the input), _1 and _2 (timbral 38 and 67 bands), _3 to _5 (temporal 128, 64, 32 frames),
    _6 to _8 (mid end), _9 (pooled features), _10 (dense); conv2d to conv2d_4 the front end in the same order,
    conv2d_5 to conv2d_7 the mid end; dense and dense_1 the back end."""
    def get(name: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(reader.get_tensor(name), dtype=np.float32))

    state = {}

    def batch_norm(target: str, index: int) -> None:
        source = "batch_normalization" + (f"_{index}" if index else "")
        state[f"{target}.weight"] = get(f"{source}/gamma")
        state[f"{target}.bias"] = get(f"{source}/beta")
        state[f"{target}.running_mean"] = get(f"{source}/moving_mean")
        state[f"{target}.running_var"] = get(f"{source}/moving_variance")
        state[f"{target}.num_batches_tracked"] = torch.tensor(0)

    def conv(target: str, index: int, one_d: bool = False) -> None:
        source = "conv2d" + (f"_{index}" if index else "")
        kernel = get(f"{source}/kernel")  # [height (time), width (frequency), in, out]
        if one_d:  # mid end: a [7, features, 1, out] kernel over a [time, features, 1] map = Conv1d over time
            state[f"{target}.weight"] = kernel[:, :, 0, :].permute(2, 1, 0).contiguous()
        else:
            state[f"{target}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
        state[f"{target}.bias"] = get(f"{source}/bias")

    batch_norm("input_bn", 0)
    for i in range(2):
        conv(f"timbral.{i}", i)
        batch_norm(f"timbral_bn.{i}", 1 + i)
    for i in range(3):
        conv(f"temporal.{i}", 2 + i)
        batch_norm(f"temporal_bn.{i}", 3 + i)
    for i in range(3):
        conv(f"mid.{i}", 5 + i, one_d=True)
        batch_norm(f"mid_bn.{i}", 6 + i)
    batch_norm("pool_bn", 9)
    batch_norm("dense_bn", 10)
    for target, source in (("dense", "dense"), ("output", "dense_1")):
        state[f"{target}.weight"] = get(f"{source}/kernel").T.contiguous()
        state[f"{target}.bias"] = get(f"{source}/bias")
    return state


def reference_patches(path: Path) -> np.ndarray:
    """musicnn's extractor.batch_data in float32: [patches, 187, 96]."""
    audio, sr = librosa.load(path, sr=tagger.SAMPLE_RATE)
    mel = librosa.feature.melspectrogram(y=audio, sr=sr, hop_length=tagger.HOP, n_fft=tagger.N_FFT,
                                         n_mels=tagger.N_MELS).T
    mel = np.log10(10000 * mel.astype(np.float32) + 1)
    return np.stack([mel[start:start + tagger.PATCH_FRAMES] for start in tagger.patch_starts(len(mel), False)])


def tensorflow_outputs(checkpoint: str, batches: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(sigmoid tags, penultimate) of musicnn's own TensorFlow graph for each batch of patches."""
    import tensorflow as tf
    from musicnn import configuration, models
    tf.compat.v1.disable_eager_execution()
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, tagger.PATCH_FRAMES, tagger.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        logits, *_, penultimate = models.define_model(x, is_training, "MSD_musicnn",
                                                      len(configuration.MSD_LABELS))
        probabilities = tf.nn.sigmoid(logits)
    session = tf.compat.v1.Session()
    session.run(tf.compat.v1.global_variables_initializer())
    tf.compat.v1.train.Saver().restore(session, checkpoint)
    outputs = [tuple(session.run([probabilities, penultimate], {x: batch, is_training: False})) for batch in batches]
    session.close()
    return outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, required=True, help="the folder with pop/ and jazz/ GTZAN clips")
    parser.add_argument("--weights", type=Path, default=ROOT / "pretrained" / "musicnn_msd.pt")
    parser.add_argument("--fixture", type=Path, default=ROOT / "tests" / "fixtures" / "musicnn_reference.json")
    args = parser.parse_args()
    import tensorflow as tf
    import musicnn
    from musicnn import configuration
    checkpoint = str(Path(musicnn.__file__).parent / "MSD_musicnn") + "/"
    state = torch_state(tf.compat.v1.train.NewCheckpointReader(checkpoint))
    network = tagger.Musicnn(len(configuration.MSD_LABELS))
    network.load_state_dict(state)  # strict: every layer of the port has its variables
    torch.save({"state_dict": state, "tags": list(configuration.MSD_LABELS),
                "source": "musicnn 0.1.0 (PyPI), musicnn/MSD_musicnn, converted by experiments/convert_musicnn.py",
                "licence": "ISC, Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019"},
               args.weights)
    batches = [reference_patches(args.clips / clip) for clip in CLIPS]
    reference = tensorflow_outputs(checkpoint, batches)
    fixture = {"model": "MSD_musicnn", "musicnn": "0.1.0", "tensorflow": tf.__version__,
               "librosa": librosa.__version__, "tags": list(configuration.MSD_LABELS), "clips": {}}
    for clip, batch, (probabilities, penultimate) in zip(CLIPS, batches, reference):
        with torch.no_grad():
            logits, embedding = network(torch.from_numpy(batch))
        tag_error = float(np.abs(torch.sigmoid(logits).numpy() - probabilities).max())
        embedding_error = float(np.abs(embedding.numpy() - penultimate).max())
        print(f"{clip}: {len(batch)} patches, port vs TensorFlow max |difference| {tag_error:.2e} (tags), "
              f"{embedding_error:.2e} (penultimate); mean P(jazz) {probabilities[:, 9].mean():.3f}, "
              f"P(pop) {probabilities[:, 1].mean():.3f}")
        fixture["clips"][clip] = {"probabilities": np.round(probabilities, 6).tolist(),
                                  "penultimate": np.round(penultimate, 5).tolist()}
    args.fixture.write_text(json.dumps(fixture) + "\n")
    print(f"wrote {args.weights} and {args.fixture}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
