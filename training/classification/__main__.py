import sys

from openbert.training.cli import main

if __name__ == "__main__":
    # Through the `openbert` command: a failure is one line on stderr with an exit status, not a traceback.
    main(["finetune", "classification", *sys.argv[1:]])
