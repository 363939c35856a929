"""What train.py writes after each epoch for a person to listen to and look at: a held-out song converted by the
generator, with its spectrogram before and after."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from conversion import convert_audio, transform_image
from data import ChunkFolder
from outputs import audio_bytes, write_audio
from plots import save_spectrograms
from spectrogram import Representation, audio_to_image, griffin_lim, image_to_magnitude, load_audio

SAMPLE_SECONDS = 30  # of the held-out song
PICTURE_BYTES = 1 << 20  # a generous bound on a spectrogram PNG


def sample_bytes(rep: Representation) -> int:
    """About the bytes one epoch's sample needs on disk while it is written: the WAV, its float copy, the PNG."""
    return audio_bytes(SAMPLE_SECONDS * rep.sample_rate) + PICTURE_BYTES


def write_sample(generator: nn.Module, val: ChunkFolder | None, rep: Representation, folder: Path, epoch: int,
                 n_iter: int, provenance: dict) -> None:
    """`folder`/epoch_NNN.wav and .png: the first held-out pop song (its first 30 s) converted by `generator`.

    Griffin-Lim runs `n_iter` iterations from the song's phase. When the song has moved, the first held-out chunk
    is converted instead, with Griffin-Lim from zero phase. Nothing is written without held-out songs (`val`
    None). The WAV carries `provenance` and the song it came from (outputs.write_audio). Raises AudioError when
    the song cannot be read; the generator is back in training mode either way.
    """
    if val is None:
        return
    songs = [song for song in val.songs if song.is_file()]
    source = str(songs[0]) if songs else f"{val.files[0]} (a held-out chunk)"
    generator.eval()
    try:
        if songs:
            audio = load_audio(songs[0], rep.sample_rate)[: SAMPLE_SECONDS * rep.sample_rate]
            before = audio_to_image(audio, rep)
            converted = convert_audio(generator, audio, rep, n_iter)
            after = audio_to_image(converted, rep)
        else:
            before = torch.from_numpy(val[0])
            after = transform_image(generator, before, rep.chunk_frames)
            length = (rep.chunk_frames - 1) * rep.hop_length  # what 512 centred frames invert to
            converted = griffin_lim(image_to_magnitude(after, rep), None, n_iter, length, rep)
    finally:
        generator.train()
    stem = Path(folder) / f"epoch_{epoch:03d}"
    write_audio(stem.with_suffix(".wav"), converted, rep.sample_rate, {**provenance, "input": source})
    save_spectrograms({"held-out pop (input)": before, f"jazz, epoch {epoch}": after}, rep, stem.with_suffix(".png"))
