"""The reference for bench/xslt: lxml with the stylesheet compiled once, one process,
reading each input file and writing each result, as a team would script it."""
import os
import sys
import time

from lxml import etree

stylesheet, source, target = sys.argv[1:4]
transform = etree.XSLT(etree.parse(stylesheet))
os.makedirs(target, exist_ok=True)
names = sorted(name for name in os.listdir(source) if name.endswith(".xml"))
start = time.perf_counter()
for name in names:
    result = transform(etree.parse(os.path.join(source, name)), received=etree.XSLT.strparam("2026-11-21"))
    with open(os.path.join(target, name), "wb") as out:
        out.write(bytes(result))
print(f"{time.perf_counter() - start:.3f}")
