"""X11 through ctypes, for the window tests: a screenshot as PNG, and a polite close.

Used by tests/test_gui.py and tests/test_gui_projector.py; no extra package is needed
(libX11 is loaded with ctypes; a screenshot is skipped where it cannot be loaded).
"""

import ctypes
import ctypes.util
import struct
import zlib


class _XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int),
                ("xoffset", ctypes.c_int), ("format", ctypes.c_int),
                ("data", ctypes.POINTER(ctypes.c_ubyte)), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int),
                ("bitmap_pad", ctypes.c_int), ("depth", ctypes.c_int),
                ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int),
                ("red_mask", ctypes.c_ulong), ("green_mask", ctypes.c_ulong),
                ("blue_mask", ctypes.c_ulong)]


class _XClientMessage(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("client", _XClientMessage), ("pad", ctypes.c_long * 24)]


class X11:
    """Just enough of Xlib: grab the screen, find a window by title, ask it to close."""

    def __init__(self, lib, display):
        self.lib, self.display = lib, display
        self.root = lib.XDefaultRootWindow(display)

    @classmethod
    def open(cls, name: str):
        path = ctypes.util.find_library("X11")
        if not path:
            return None
        lib = ctypes.CDLL(path)
        lib.XOpenDisplay.restype = ctypes.c_void_p
        lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
        lib.XDefaultRootWindow.restype = ctypes.c_ulong
        lib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        lib.XGetImage.restype = ctypes.POINTER(_XImage)
        lib.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_uint, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
        lib.XFree.argtypes = [ctypes.c_void_p]
        lib.XQueryTree.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                   ctypes.POINTER(ctypes.c_ulong),
                                   ctypes.POINTER(ctypes.c_ulong),
                                   ctypes.POINTER(ctypes.POINTER(ctypes.c_ulong)),
                                   ctypes.POINTER(ctypes.c_uint)]
        lib.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong,
                                   ctypes.POINTER(ctypes.c_char_p)]
        lib.XInternAtom.restype = ctypes.c_ulong
        lib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int,
                                   ctypes.c_long, ctypes.POINTER(_XEvent)]
        lib.XFlush.argtypes = [ctypes.c_void_p]
        lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
        display = lib.XOpenDisplay(name.encode())
        return cls(lib, display) if display else None

    def close(self) -> None:
        self.lib.XCloseDisplay(self.display)

    def screenshot(self, x: int, y: int, width: int, height: int) -> bytes:
        """The screen's pixels in that rectangle, as PNG bytes (24-bit RGB)."""
        image = self.lib.XGetImage(self.display, self.root, x, y, width, height,
                                   0xFFFFFFFF, 2)                       # ZPixmap
        assert image, "XGetImage failed"
        img = image.contents
        assert img.bits_per_pixel == 32, img.bits_per_pixel
        raw = ctypes.string_at(img.data, img.bytes_per_line * height)
        rows = []
        for row in range(height):                # BGRX (little-endian) -> RGB
            line = raw[row * img.bytes_per_line:row * img.bytes_per_line + 4 * width]
            rgb = bytearray(3 * width)
            rgb[0::3], rgb[1::3], rgb[2::3] = line[2::4], line[1::4], line[0::4]
            rows.append(b"\x00" + bytes(rgb))
        self.lib.XFree(img.data)
        self.lib.XFree(image)
        return _png(width, height, b"".join(rows))

    def find_window(self, title: str):
        """A top-level window whose name is `title`, or None."""
        root_ret, parent = ctypes.c_ulong(), ctypes.c_ulong()
        children, count = ctypes.POINTER(ctypes.c_ulong)(), ctypes.c_uint()
        self.lib.XQueryTree(self.display, self.root, ctypes.byref(root_ret),
                            ctypes.byref(parent), ctypes.byref(children), ctypes.byref(count))
        found = None
        for i in range(count.value):
            name = ctypes.c_char_p()
            if self.lib.XFetchName(self.display, children[i], ctypes.byref(name)) and \
                    name.value:
                if name.value.decode(errors="replace") == title:
                    found = children[i]
                self.lib.XFree(name)
        if children:
            self.lib.XFree(children)
        return found

    def close_window(self, window: int) -> None:
        """Send WM_DELETE_WINDOW, as a window manager does for the close button."""
        event = _XEvent()
        event.client.type = 33                                           # ClientMessage
        event.client.window = window
        event.client.message_type = self.lib.XInternAtom(self.display, b"WM_PROTOCOLS", 0)
        event.client.format = 32
        event.client.data[0] = self.lib.XInternAtom(self.display, b"WM_DELETE_WINDOW", 0)
        self.lib.XSendEvent(self.display, window, 0, 0, ctypes.byref(event))
        self.lib.XFlush(self.display)


def _png(width: int, height: int, scanlines: bytes) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)       # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
            chunk(b"IDAT", zlib.compress(scanlines, 9)) + chunk(b"IEND", b""))
