"""What the commands at the project's root share. Nothing here imports a command.

- sound in and files out: audio_files (reading any song), output_files (atomic writes, provenance), errors
  (UserError, the base of every error a user can fix), commands (how a command ends), plots;
- the representation: spectrogram (STFT log-magnitude in dB as a [-1, 1] image, the dB-image mapping,
  Griffin-Lim, a chunk back to audio);
- the dataset: dataset (chunk folders, cutting a song into chunks), preprocessing (audio_preprocessing.py's work);
- runs and checkpoints: checkpoint (the format, ModelConfig), runs (where a run lives, resuming), compute (device,
  seeds, torchrun, speed options), epoch_outputs (samples and the results page);
- conversion: conversion (a song through a generator), full_quality (back to the song's rate and channels),
  jobs (ConversionOptions, checks before any work);
- evaluation: judge, channel, metrics, evaluation_report; benchmark_convert (a benchmark's child process).
The CycleGAN losses are in train.py, the networks in model_cyclegan.py and model_pix2pix.py, at the root.
"""
