import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is imported: one line, the shell's code for SIGINT
    print("accord: interrupted while starting; nothing was written", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
