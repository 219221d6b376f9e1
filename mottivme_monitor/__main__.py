"""`python -m mottivme_monitor --config PATH COMMAND`."""

import sys

from .cli import main

sys.exit(main())
