"""`python -m maas_client`: the command line (see maas_client.cli)."""

import sys

from maas_client.cli import main

sys.exit(main())
