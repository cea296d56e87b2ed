import sys

print(f"hello from python, {len(sys.argv)} args")
