"""The daemon's Windows transport: a named pipe only the current user can open, local clients only.

Python's own named-pipe servers (asyncio's proactor, ``multiprocessing.connection``) create their
pipes with NULL security attributes, which gives the pipe the default DACL (readable by Everyone,
among others) and accepts clients from other machines. This module therefore calls
``CreateNamedPipeW`` itself, through ctypes, with:

* an explicit security descriptor whose protected DACL grants access to the current user's SID
  and to nobody else (``O:<sid>G:<sid>D:P(A;;GA;;;<sid>)``);
* ``PIPE_REJECT_REMOTE_CLIENTS``, so SMB clients are refused by the kernel;
* ``FILE_FLAG_FIRST_PIPE_INSTANCE`` on the first instance: if the name already exists (another
  daemon, or a process squatting the name to catch tokens) the daemon refuses to start.

The client, symmetrically, refuses a pipe whose server process does not run as the current user.

I/O is overlapped, each connection with a reader thread that feeds an ``asyncio.StreamReader``
and writes done in the default executor: synchronous pipe handles serialize all I/O on a handle,
so a blocked read would stall every reply. This is the trusted single-user session bridge the
security notes describe, not a Windows Service. It is written and type-checked on Linux
(``mypy --platform win32``) and has not been run on Windows.
"""

from __future__ import annotations

import asyncio
import sys

from legion_nb.engine.daemon.streams import ConnectionHandler, LineWriter, Listener
from legion_nb.errors import DaemonError

__all__ = ["PipeNameTakenError", "connect_pipe", "listen_pipe"]


class PipeNameTakenError(DaemonError):
    """The daemon's pipe name exists already: another daemon, or a squatter."""

    code = "daemon_pipe_taken"


if sys.platform == "win32":
    import contextlib
    import ctypes
    import logging
    import threading
    from ctypes import wintypes
    from typing import Any

    from legion_nb.engine.daemon.protocol import MAX_LINE_BYTES, MAX_REPLY_BYTES

    log = logging.getLogger("legion_nb.daemon")

    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)

    _PIPE_ACCESS_DUPLEX = 0x00000003
    _FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
    _FILE_FLAG_OVERLAPPED = 0x40000000
    _PIPE_TYPE_BYTE = 0x00000000
    _PIPE_READMODE_BYTE = 0x00000000
    _PIPE_WAIT = 0x00000000
    _PIPE_REJECT_REMOTE_CLIENTS = 0x00000008
    _PIPE_UNLIMITED_INSTANCES = 255
    _BUFFER = 64 * 1024
    _INVALID_HANDLE = wintypes.HANDLE(-1).value
    _ERROR_ACCESS_DENIED = 5
    _ERROR_IO_PENDING = 997
    _ERROR_PIPE_CONNECTED = 535
    _ERROR_MORE_DATA = 234
    _INFINITE = 0xFFFFFFFF
    _WAIT_OBJECT_0 = 0
    _TOKEN_QUERY = 0x0008
    _TOKEN_USER_CLASS = 1
    _SDDL_REVISION_1 = 1
    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

    class _SecurityAttributes(ctypes.Structure):
        _fields_ = [
            ("nLength", wintypes.DWORD),
            ("lpSecurityDescriptor", wintypes.LPVOID),
            ("bInheritHandle", wintypes.BOOL),
        ]

    class _Overlapped(ctypes.Structure):
        _fields_ = [
            ("Internal", ctypes.c_void_p),
            ("InternalHigh", ctypes.c_void_p),
            ("Offset", wintypes.DWORD),
            ("OffsetHigh", wintypes.DWORD),
            ("hEvent", wintypes.HANDLE),
        ]

    def _prototype(dll: Any, name: str, restype: Any, *argtypes: Any) -> Any:
        fn = getattr(dll, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)
        return fn

    _P = ctypes.POINTER
    _CreateNamedPipeW = _prototype(
        _kernel32,
        "CreateNamedPipeW",
        wintypes.HANDLE,
        wintypes.LPCWSTR,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.DWORD,
        _P(_SecurityAttributes),
    )
    _ConnectNamedPipe = _prototype(
        _kernel32, "ConnectNamedPipe", wintypes.BOOL, wintypes.HANDLE, _P(_Overlapped)
    )
    _ReadFile = _prototype(
        _kernel32,
        "ReadFile",
        wintypes.BOOL,
        wintypes.HANDLE,
        wintypes.LPVOID,
        wintypes.DWORD,
        _P(wintypes.DWORD),
        _P(_Overlapped),
    )
    _WriteFile = _prototype(
        _kernel32,
        "WriteFile",
        wintypes.BOOL,
        wintypes.HANDLE,
        wintypes.LPCVOID,
        wintypes.DWORD,
        _P(wintypes.DWORD),
        _P(_Overlapped),
    )
    _GetOverlappedResult = _prototype(
        _kernel32,
        "GetOverlappedResult",
        wintypes.BOOL,
        wintypes.HANDLE,
        _P(_Overlapped),
        _P(wintypes.DWORD),
        wintypes.BOOL,
    )
    _CancelIoEx = _prototype(_kernel32, "CancelIoEx", wintypes.BOOL, wintypes.HANDLE, _P(_Overlapped))
    _CreateEventW = _prototype(
        _kernel32,
        "CreateEventW",
        wintypes.HANDLE,
        wintypes.LPVOID,
        wintypes.BOOL,
        wintypes.BOOL,
        wintypes.LPCWSTR,
    )
    _SetEvent = _prototype(_kernel32, "SetEvent", wintypes.BOOL, wintypes.HANDLE)
    _ResetEvent = _prototype(_kernel32, "ResetEvent", wintypes.BOOL, wintypes.HANDLE)
    _WaitForMultipleObjects = _prototype(
        _kernel32,
        "WaitForMultipleObjects",
        wintypes.DWORD,
        wintypes.DWORD,
        _P(wintypes.HANDLE),
        wintypes.BOOL,
        wintypes.DWORD,
    )
    _CloseHandle = _prototype(_kernel32, "CloseHandle", wintypes.BOOL, wintypes.HANDLE)
    _LocalFree = _prototype(_kernel32, "LocalFree", wintypes.HLOCAL, wintypes.HLOCAL)
    _GetCurrentProcess = _prototype(_kernel32, "GetCurrentProcess", wintypes.HANDLE)
    _OpenProcess = _prototype(
        _kernel32, "OpenProcess", wintypes.HANDLE, wintypes.DWORD, wintypes.BOOL, wintypes.DWORD
    )
    _GetNamedPipeServerProcessId = _prototype(
        _kernel32, "GetNamedPipeServerProcessId", wintypes.BOOL, wintypes.HANDLE, _P(wintypes.ULONG)
    )
    _OpenProcessToken = _prototype(
        _advapi32, "OpenProcessToken", wintypes.BOOL, wintypes.HANDLE, wintypes.DWORD, _P(wintypes.HANDLE)
    )
    _GetTokenInformation = _prototype(
        _advapi32,
        "GetTokenInformation",
        wintypes.BOOL,
        wintypes.HANDLE,
        ctypes.c_int,
        wintypes.LPVOID,
        wintypes.DWORD,
        _P(wintypes.DWORD),
    )
    _ConvertSidToStringSidW = _prototype(
        _advapi32, "ConvertSidToStringSidW", wintypes.BOOL, wintypes.LPVOID, _P(wintypes.LPWSTR)
    )
    _ConvertStringSecurityDescriptorToSecurityDescriptorW = _prototype(
        _advapi32,
        "ConvertStringSecurityDescriptorToSecurityDescriptorW",
        wintypes.BOOL,
        wintypes.LPCWSTR,
        wintypes.DWORD,
        _P(wintypes.LPVOID),
        _P(wintypes.ULONG),
    )

    def _win_error(what: str) -> OSError:
        code = ctypes.get_last_error()
        return OSError(code, f"{what} failed: {ctypes.FormatError(code).strip()}")

    def _process_user_sid(process: Any) -> str:
        """The string SID of the account a process runs as."""
        token = wintypes.HANDLE()
        if not _OpenProcessToken(process, _TOKEN_QUERY, ctypes.byref(token)):
            raise _win_error("OpenProcessToken")
        try:
            size = wintypes.DWORD()
            _GetTokenInformation(token, _TOKEN_USER_CLASS, None, 0, ctypes.byref(size))  # sizing call
            buffer = ctypes.create_string_buffer(size.value)
            if not _GetTokenInformation(token, _TOKEN_USER_CLASS, buffer, size, ctypes.byref(size)):
                raise _win_error("GetTokenInformation")
            sid = ctypes.cast(buffer, _P(ctypes.c_void_p))[0]  # TOKEN_USER.User.Sid
            text = wintypes.LPWSTR()
            if not _ConvertSidToStringSidW(sid, ctypes.byref(text)):
                raise _win_error("ConvertSidToStringSidW")
            try:
                return str(text.value)
            finally:
                _LocalFree(ctypes.cast(text, wintypes.HLOCAL))
        finally:
            _CloseHandle(token)

    class _OwnerOnlySecurity:
        """SECURITY_ATTRIBUTES whose DACL admits the current user's SID alone."""

        def __init__(self) -> None:
            sid = _process_user_sid(_GetCurrentProcess())
            self.sid = sid
            descriptor = wintypes.LPVOID()
            sddl = f"O:{sid}G:{sid}D:P(A;;GA;;;{sid})"
            if not _ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl, _SDDL_REVISION_1, ctypes.byref(descriptor), None
            ):
                raise _win_error("ConvertStringSecurityDescriptorToSecurityDescriptorW")
            self._descriptor = descriptor
            self.attributes = _SecurityAttributes(
                nLength=ctypes.sizeof(_SecurityAttributes),
                lpSecurityDescriptor=descriptor,
                bInheritHandle=False,
            )

        def free(self) -> None:
            if self._descriptor:
                _LocalFree(ctypes.cast(self._descriptor, wintypes.HLOCAL))
                self._descriptor = wintypes.LPVOID()

    def _create_instance(name: str, security: _OwnerOnlySecurity, *, first: bool) -> Any:
        open_mode = _PIPE_ACCESS_DUPLEX | _FILE_FLAG_OVERLAPPED
        if first:
            open_mode |= _FILE_FLAG_FIRST_PIPE_INSTANCE
        pipe_mode = _PIPE_TYPE_BYTE | _PIPE_READMODE_BYTE | _PIPE_WAIT | _PIPE_REJECT_REMOTE_CLIENTS
        handle = _CreateNamedPipeW(
            name,
            open_mode,
            pipe_mode,
            _PIPE_UNLIMITED_INSTANCES,
            _BUFFER,
            _BUFFER,
            0,
            ctypes.byref(security.attributes),
        )
        if handle == _INVALID_HANDLE or handle is None:
            if first and ctypes.get_last_error() == _ERROR_ACCESS_DENIED:
                raise PipeNameTakenError(
                    f"the pipe {name} already exists: another daemon serves this state, or another "
                    "process holds the name; stop it (or sign out and in) before starting the daemon"
                )
            raise _win_error("CreateNamedPipeW")
        return handle

    def _overlapped_io(operation: Any, handle: Any, buffer: Any, size: int, event: Any) -> int:
        """One overlapped ReadFile/WriteFile, waited for in the calling thread."""
        overlapped = _Overlapped(hEvent=event)
        _ResetEvent(event)
        done = wintypes.DWORD()
        if not operation(handle, buffer, size, None, ctypes.byref(overlapped)):
            error = ctypes.get_last_error()
            if error not in (_ERROR_IO_PENDING, _ERROR_MORE_DATA):
                raise OSError(error, ctypes.FormatError(error).strip())
        if not _GetOverlappedResult(handle, ctypes.byref(overlapped), ctypes.byref(done), True):
            error = ctypes.get_last_error()
            if error != _ERROR_MORE_DATA:
                raise OSError(error, ctypes.FormatError(error).strip())
        return int(done.value)

    class _PipeConnection:
        """One connected pipe instance as a StreamReader (fed by a thread) and a writer."""

        def __init__(
            self, handle: Any, loop: asyncio.AbstractEventLoop, reader: asyncio.StreamReader
        ) -> None:
            self._handle = handle
            self._loop = loop
            self._reader = reader
            self._life = threading.Lock()  # held briefly: the handle is not closed under a cancel
            self._writing = threading.Lock()  # held for a whole write: the handle outlives it
            self._handle_closed = False
            self._closing = False
            self._pending = bytearray()
            self._read_event = _CreateEventW(None, True, False, None)
            self._write_event = _CreateEventW(None, True, False, None)
            self._thread = threading.Thread(target=self._read_loop, name="legion-pipe-reader", daemon=True)

        def start(self) -> None:
            self._thread.start()

        def write(self, data: bytes) -> None:
            if not self._closing:
                self._pending += data

        async def drain(self) -> None:
            data, self._pending = bytes(self._pending), bytearray()
            if data:
                await self._loop.run_in_executor(None, self._write_all, data)

        def close(self) -> None:
            if self._closing:
                return
            self._closing = True
            with self._life:
                if not self._handle_closed:
                    _CancelIoEx(self._handle, None)  # ends the reader's pending read; it closes the handle

        def is_closing(self) -> bool:
            return self._closing

        def _write_all(self, data: bytes) -> None:
            with self._writing:
                with self._life:
                    if self._handle_closed:
                        raise BrokenPipeError("the pipe client went away")
                view = memoryview(data)
                while view:
                    chunk = bytes(view[:_BUFFER])
                    written = _overlapped_io(_WriteFile, self._handle, chunk, len(chunk), self._write_event)
                    view = view[written:]

        def _read_loop(self) -> None:
            buffer = ctypes.create_string_buffer(_BUFFER)
            try:
                while not self._closing:
                    count = _overlapped_io(_ReadFile, self._handle, buffer, _BUFFER, self._read_event)
                    if count == 0:
                        break
                    self._deliver(self._reader.feed_data, buffer.raw[:count])
            except OSError:
                pass  # broken pipe, cancelled read or disconnect: all mean end of stream
            finally:
                self._deliver(self._reader.feed_eof)
                with self._writing, self._life:  # a write in flight ends first (CancelIoEx ends it)
                    self._handle_closed = True
                    _CloseHandle(self._handle)
                    _CloseHandle(self._read_event)
                    _CloseHandle(self._write_event)

        def _deliver(self, callback: Any, *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is left to read
                self._loop.call_soon_threadsafe(callback, *args)

    class PipeListener:
        """Accepts connections on a thread and hands each to the handler on the event loop."""

        def __init__(self, name: str, handler: ConnectionHandler, loop: asyncio.AbstractEventLoop) -> None:
            self.address = name
            self._handler = handler
            self._loop = loop
            self._security = _OwnerOnlySecurity()
            self._first = _create_instance(name, self._security, first=True)
            self._stop = _CreateEventW(None, True, False, None)
            self._connected = _CreateEventW(None, True, False, None)
            self._tasks: set[asyncio.Task[None]] = set()
            self._thread = threading.Thread(target=self._accept_loop, name="legion-pipe-accept", daemon=True)
            self._thread.start()

        async def aclose(self) -> None:
            _SetEvent(self._stop)
            await asyncio.to_thread(self._thread.join)
            _CloseHandle(self._stop)
            _CloseHandle(self._connected)
            self._security.free()

        def _accept_loop(self) -> None:
            handle = self._first
            while True:
                outcome = self._wait_for_client(handle)
                if outcome == "stop":
                    _CloseHandle(handle)
                    return
                # The next instance exists before this one is handed over or closed: the name never
                # lapses, so no other process can create a pipe of that name in between.
                try:
                    next_handle = _create_instance(self.address, self._security, first=False)
                except OSError:
                    log.error("could not create the next pipe instance; no new connections accepted")  # noqa: TRY400
                    next_handle = None
                if outcome == "connected":
                    self._hand_over(handle)
                else:
                    _CloseHandle(handle)
                if next_handle is None:
                    return
                handle = next_handle

        def _wait_for_client(self, handle: Any) -> str:
            """Wait on one instance: "connected", "failed" (try the next) or "stop"."""
            overlapped = _Overlapped(hEvent=self._connected)
            _ResetEvent(self._connected)
            error = 0 if _ConnectNamedPipe(handle, ctypes.byref(overlapped)) else ctypes.get_last_error()
            if error == _ERROR_IO_PENDING:
                waits = (wintypes.HANDLE * 2)(self._connected, self._stop)
                transferred = wintypes.DWORD()
                if _WaitForMultipleObjects(2, waits, False, _INFINITE) != _WAIT_OBJECT_0:
                    _CancelIoEx(handle, ctypes.byref(overlapped))  # then wait for the cancel to land
                    _GetOverlappedResult(handle, ctypes.byref(overlapped), ctypes.byref(transferred), True)
                    return "stop"
                ok = _GetOverlappedResult(handle, ctypes.byref(overlapped), ctypes.byref(transferred), False)
                error = 0 if ok else ctypes.get_last_error()
            if error in (0, _ERROR_PIPE_CONNECTED):
                return "connected"
            log.warning("a pipe client failed to connect (Windows error %d)", error)
            return "failed"

        def _hand_over(self, handle: Any) -> None:
            try:
                self._loop.call_soon_threadsafe(self._adopt, handle)
            except RuntimeError:  # the loop is closed: nobody will serve this client
                _CloseHandle(handle)

        def _adopt(self, handle: Any) -> None:
            reader = asyncio.StreamReader(limit=MAX_LINE_BYTES + 1)
            connection = _PipeConnection(handle, self._loop, reader)
            connection.start()
            task = self._loop.create_task(_run(self._handler, reader, connection))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(handler: ConnectionHandler, reader: asyncio.StreamReader, writer: LineWriter) -> None:
        await handler(reader, writer)

    async def listen_pipe(name: str, handler: ConnectionHandler) -> Listener:
        """Serve ``handler`` on the named pipe ``name`` (fails if the name exists already)."""
        return PipeListener(name, handler, asyncio.get_running_loop())

    async def connect_pipe(name: str) -> tuple[asyncio.StreamReader, LineWriter]:
        """Connect to a daemon pipe, refusing one whose server does not run as this user.

        Needs the proactor event loop (the default on Windows).
        """
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_REPLY_BYTES)
        create = getattr(loop, "create_pipe_connection", None)
        if create is None:
            raise OSError("this event loop cannot open named pipes: use the default (proactor) loop")
        transport, protocol = await create(lambda: asyncio.StreamReaderProtocol(reader), name)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        pipe = transport.get_extra_info("pipe")
        if not _served_by_current_user(getattr(pipe, "handle", None)):
            writer.close()
            raise PermissionError(f"the pipe {name} is not served by your account: not sending the token")
        return reader, writer

    def _served_by_current_user(handle: Any) -> bool:
        if handle is None:
            return False
        pid = wintypes.ULONG()
        if not _GetNamedPipeServerProcessId(handle, ctypes.byref(pid)):
            return False
        process = _OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid.value)
        if not process:
            return False
        try:
            return _process_user_sid(process) == _process_user_sid(_GetCurrentProcess())
        except OSError:  # cannot read the server's token: treat as someone else
            return False
        finally:
            _CloseHandle(process)

else:

    async def _run(handler: ConnectionHandler, reader: asyncio.StreamReader, writer: LineWriter) -> None:
        await handler(reader, writer)

    async def listen_pipe(name: str, handler: ConnectionHandler) -> Listener:
        """Named pipes are a Windows transport; elsewhere the daemon uses a Unix socket."""
        raise DaemonError(f"cannot serve {name}: named pipes exist on Windows only")

    async def connect_pipe(name: str) -> tuple[asyncio.StreamReader, LineWriter]:
        """Named pipes are a Windows transport; elsewhere the daemon uses a Unix socket."""
        raise OSError(f"cannot open {name}: named pipes exist on Windows only")
