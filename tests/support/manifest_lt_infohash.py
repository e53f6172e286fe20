#!/usr/bin/python3
"""libtorrent's view of .torrent files, for comparing with songswarm's parser.

    manifest_lt_infohash.py info TORRENT
        prints JSON: info_hash (v1, hex), name, num_pieces, piece_length,
        total_size, files [{path, size, pad}]
    manifest_lt_infohash.py create PATH OUT PIECE_LENGTH (v1|hybrid)
        makes a torrent of PATH (file or directory) with libtorrent and
        prints the same JSON for it

Exit status 3 when libtorrent cannot be imported.
"""
import json
import os
import sys

try:
    import libtorrent as lt
except ImportError as e:  # the Rust test turns this into a clear failure
    print(f"cannot import libtorrent: {e}", file=sys.stderr)
    sys.exit(3)


def describe(ti):
    fs = ti.files()
    files = [
        {
            "path": fs.file_path(i),
            "size": fs.file_size(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
        }
        for i in range(fs.num_files())
    ]
    return {
        "info_hash": str(ti.info_hashes().v1),
        "name": ti.name(),
        "num_pieces": ti.num_pieces(),
        "piece_length": ti.piece_length(),
        "total_size": ti.total_size(),
        "files": files,
    }


def main(argv):
    if len(argv) == 3 and argv[1] == "info":
        print(json.dumps(describe(lt.torrent_info(argv[2]))))
        return 0
    if len(argv) == 6 and argv[1] == "create":
        _, _, path, out, piece_length, kind = argv
        fs = lt.file_storage()
        lt.add_files(fs, path)
        flags = lt.create_torrent.v1_only if kind == "v1" else 0
        t = lt.create_torrent(fs, int(piece_length), flags=flags)
        lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(path)))
        with open(out, "wb") as f:
            f.write(lt.bencode(t.generate()))
        print(json.dumps(describe(lt.torrent_info(out))))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
