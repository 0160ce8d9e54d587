import sys
from pathlib import Path

# the RIB tests' builders (prefixes, attribute sets, the View of a receiving peer)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rib"))
