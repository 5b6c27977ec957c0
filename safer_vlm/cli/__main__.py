"""`python -m safer_vlm.cli ...` (what torchrun / accelerate launch run) is the `safer-vlm` command."""

from safer_vlm.cli.app import main

if __name__ == "__main__":
    main()
