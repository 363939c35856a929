"""What the commands at the project's root share: audio in and out, the spectrogram representation, datasets,
checkpoints and runs, conversion, the judges and the reports. Nothing here imports a command.

Where to look first:
- spectrogram.py: the representation (STFT log-magnitude in dB as a [-1, 1] image) and its inverse, Griffin-Lim;
- train.py (at the root): the CycleGAN losses; model_cyclegan.py: the networks;
- conversion.py: a song through a generator, window by window; full_quality.py: back to the song's rate and channels.
"""
