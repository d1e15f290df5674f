"""``python -m academicodec``: the same CLI as the console script (handy under torchrun)."""

from academicodec.cli import main

main()
