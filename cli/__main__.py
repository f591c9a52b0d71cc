"""``python -m cli ...`` runs ``mmp ...`` (for launchers that take a module, such as ``torchrun -m cli``)."""
from cli.main import main

main(prog_name="mmp")
