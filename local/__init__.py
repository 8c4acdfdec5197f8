"""Running the gateway on one machine: no AWS account, no Docker.

Importing this package puts functions/ on sys.path, so the functions' modules import
`gateway` as a top-level package, as they do in Lambda.
"""

import sys

from local.defaults import FUNCTIONS_DIR

if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))
