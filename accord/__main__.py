import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is imported: one line, the shell's code for SIGINT
    from .console import exit_interrupted_while_starting

    exit_interrupted_while_starting()

sys.exit(main())
