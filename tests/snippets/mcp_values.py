# The component behind tests/test_mcp.py (world mcp-test in mcp_values.wit): echoes of every WIT type, and
# hostile tools that the policy must stop: read a file, read the environment, loop, allocate, connect.
import os
import socket

from componentize_py_types import Err

calls = 0


class WitWorld:
    def add(self, a: int, b: int) -> int:
        return a + b

    def bump(self) -> int:
        global calls
        calls += 1
        return calls

    def read_file(self, path: str) -> str:
        with open(path) as f:
            return f.read()

    def env_var(self, name: str):
        return os.environ.get(name)

    def spin(self) -> int:
        n = 0
        while True:
            n += 1

    def hog(self, mebibytes: int) -> int:
        return len([bytearray(1 << 20) for _ in range(mebibytes)])

    def dial(self, port: int) -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.connect(("127.0.0.1", port))
            return "connected"

    def fail(self, message: str) -> str:
        raise ValueError(message)


def _echo(self, v):
    return v


def _echo_result(self, v):
    if isinstance(v, Err):
        raise v
    return v.value


class Values:
    echo_u8 = echo_s8 = echo_u16 = echo_s16 = echo_u32 = echo_s32 = echo_u64 = echo_s64 = _echo
    echo_f32 = echo_f64 = echo_bool = echo_char = echo_string = echo_bytes = echo_strings = _echo
    echo_tuple = echo_person = echo_shape = echo_color = echo_access = echo_option = echo_nested_option = _echo
    echo_result = echo_either = _echo_result

    def nothing(self) -> None:
        return None

    def not_a_number(self) -> float:
        return float("nan")
