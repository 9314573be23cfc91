"""``python -m vlmdata.train`` / ``accelerate launch -m vlmdata.train --config train.yaml``."""

from vlmdata.train.cli import train

if __name__ == "__main__":
    train(prog_name="vlmdata.train")
