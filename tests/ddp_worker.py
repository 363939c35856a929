"""train.main under torchrun, recording what test_ddp.py checks: this rank's final weights and the chunks it got.

    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUTPUT_DIR [train.py arguments]

Writes OUTPUT_DIR/rank<RANK>.pt = {"code": exit code, "indices": dataset items read, "initial" and "weights":
[state_dict of generator_ab, generator_ba, discriminator_a, discriminator_b] before and after training}.
"""

import copy
import os
import sys
from pathlib import Path

import torch

import train
from pop2jazz import compute
from pop2jazz.dataset import UnpairedChunks

networks, initial, indices = [], [], []
training_forms, get_item = compute.training_forms, UnpairedChunks.__getitem__


def recording_forms(plain, *args, **kwargs):
    networks.extend(plain)
    initial.extend(copy.deepcopy(network.state_dict()) for network in plain)
    return training_forms(plain, *args, **kwargs)


def recording_get_item(self, index):
    indices.append(index)
    return get_item(self, index)


compute.training_forms, UnpairedChunks.__getitem__ = recording_forms, recording_get_item
code = train.main(sys.argv[2:])
weights = [network.state_dict() for network in networks]
torch.save({"code": code, "indices": indices, "initial": initial, "weights": weights},
           Path(sys.argv[1]) / f"rank{os.environ['RANK']}.pt")
sys.exit(code)
