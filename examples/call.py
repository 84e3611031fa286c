#!/usr/bin/env python3
"""Make one hook call to hookd from a shell, with Google's grpcio.

    pip install grpcio grpcio-tools grpcio-health-checking grpcio-reflection
    python3 examples/call.py auth_on_register \
        '{"peer": {"addr": "127.0.0.1", "port": 50000}, "client_id": "c1",
          "username": "joe", "password": "c2VjcmV0"}'

The second argument is the hook's argument message (see proto/hookd/v1/hookd.proto)
in protobuf's JSON mapping, so `bytes` fields such as `password` and `payload`
are base64 ("c2VjcmV0" is "secret"). Prints the verdict as JSON. Uses the
unary HookService.Call; --addr picks the server (default 127.0.0.1:50051).
"""

import argparse
import importlib
import os
import sys
import tempfile

import grpc
from google.protobuf import json_format
from grpc_tools import protoc

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")


def load_stubs():
    """Compiles hookd.proto into a temporary folder and imports it."""
    out = tempfile.mkdtemp(prefix="hookd-proto-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    status = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}",
                          f"--grpc_python_out={out}", "hookd/v1/hookd.proto"])
    if status != 0:
        sys.exit("could not compile hookd.proto")
    sys.path.insert(0, out)
    return importlib.import_module("hookd.v1.hookd_pb2"), importlib.import_module("hookd.v1.hookd_pb2_grpc")


def main():
    parser = argparse.ArgumentParser(description="Make one hook call to hookd.")
    parser.add_argument("hook", help="e.g. auth_on_register, auth_on_publish, on_publish")
    parser.add_argument("arguments", help="the hook's arguments as protobuf JSON")
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds")
    args = parser.parse_args()

    pb, rpc = load_stubs()
    hooks = [field.name for field in pb.HookCall.DESCRIPTOR.oneofs_by_name["hook"].fields]
    if args.hook not in hooks:
        sys.exit(f"`{args.hook}` is not a hook; the hooks are: {', '.join(hooks)}")
    try:
        call = json_format.Parse(f'{{"{args.hook}": {args.arguments}}}', pb.HookCall())
    except json_format.ParseError as e:
        sys.exit(f"invalid arguments for {args.hook} (protobuf JSON of its message in hookd.proto): {e}")
    with grpc.insecure_channel(args.addr) as channel:
        try:
            verdict = rpc.HookServiceStub(channel).Call(call, timeout=args.timeout)
        except grpc.RpcError as e:
            sys.exit(f"{e.code().name}: {e.details()}")
    print(json_format.MessageToJson(verdict, indent=None))


if __name__ == "__main__":
    main()
