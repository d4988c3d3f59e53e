"""Read-only: what people and scripts see without changing anything. The inbox client
(`client`: drop a request, wait for its answer), orchestrations for `status` and `list`
(`status`, `live`), and the agent fleet (`fleet`). Only the daemon writes state."""
