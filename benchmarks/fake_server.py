"""Run the loopback fake provider in its own process (so it does not share the benchmark's GIL).

    python -m benchmarks.fake_server KEY   # prints the base URL, serves until stdin closes
"""

from __future__ import annotations

import sys

from tests.fakes import FakeProvider, ok


def main() -> None:
    key = sys.argv[1]
    with FakeProvider(api_key=key, default=ok("fine, thanks", usage=(300, 5), chunks=4)) as fp:
        print(fp.base_url, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
