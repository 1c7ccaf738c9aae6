"""``python -m ltvcore.cli``: the ``ltv`` command."""

import sys

from ltvcore.cli.main import main

sys.exit(main())
