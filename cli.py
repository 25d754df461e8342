"""`python cli.py --help` from a clone: the pipeline's commands (convrnn_video/cli.py).

Installed, the same commands are the `convrnn-video` console script.
"""

import sys

from convrnn_video.cli import main

if __name__ == "__main__":
    sys.exit(main())
