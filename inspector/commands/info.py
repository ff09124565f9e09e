"""`info IMAGE` (header, superblock, census) and `stat IMAGE PATH` (one inode in full).

Both open plain EROFS images too (labelled as such), unlike the composefs-info commands.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import humanize

from inspector.composefs.escape import display, display_value
from inspector.composefs.image import open_image
from inspector.composefs.summary import format_mtime, image_info, inode_details
from inspector.commands.common import json_text, json_xattr_text, print_json
from inspector.errors import InspectError


def _size(n: int) -> str:
    return f"{humanize.naturalsize(n, binary=True)} ({n} bytes)" if n >= 1024 else f"{n} bytes"


def info_json(info) -> dict:
    return dataclasses.asdict(info)


def cmd_info(args) -> int:
    results = []
    for path in args.images:
        with open_image(path) as img:
            info = image_info(img)
        if args.json:
            results.append(info_json(info))
            continue
        w = sys.stdout.write
        w(f"{display(info.path)}: {info.kind}\n")
        if info.kind == "composefs":
            w(f"  composefs header      version {info.header_version}, composefs_version "
              f"{info.composefs_version}, flags {info.header_flags:#x}{' (HAS_ACL)' if info.has_acl else ''}\n")
        w(f"  file size             {_size(info.file_size)}, {info.blocks} blocks of {info.block_size}\n")
        w(f"  fs-verity digest      {info.fsverity_digest}\n")
        w(f"  superblock inodes     {info.inodes_in_superblock} (root nid {info.root_nid}, "
          f"meta_blkaddr {info.meta_blkaddr}, xattr_blkaddr {info.xattr_blkaddr})\n")
        w(f"  features              compat: {', '.join(info.feature_compat) or '-'}; "
          f"incompat: {', '.join(info.feature_incompat) or '-'}\n")
        w(f"  build time            {info.build_time}.{info.build_time_nsec} "
          f"({format_mtime(info.build_time, info.build_time_nsec)})\n")
        w(f"  entries               {info.entries} paths, {info.distinct_inodes} inodes "
          f"({info.compact_inodes} compact, {info.extended_inodes} extended), "
          f"{info.hardlinked_paths} extra hardlink paths, {info.whiteout_stubs} root whiteout stubs\n")
        w("  by type               " + ", ".join(f"{k} {v}" for k, v in info.by_type.items()) + "\n")
        w("  by layout             " + ", ".join(f"{k} {v}" for k, v in info.by_layout.items()) + "\n")
        if info.user_whiteouts:
            w(f"  user whiteouts        {info.user_whiteouts}\n")
        w(f"  external files        {info.external_files} ({_size(info.external_bytes)}), "
          f"{info.objects} distinct objects, {info.files_with_digest} with fs-verity digest\n")
        w(f"  inline files          {info.inline_files} ({_size(info.inline_bytes)})\n")
    if args.json:
        print_json(results if len(results) != 1 else results[0])
    return 0


def stat_json(d) -> dict:
    out = {}
    for f in dataclasses.fields(d):
        v = getattr(d, f.name)
        if f.name in ("path", "payload", "symlink_target"):
            v = json_text(v)
        elif f.name == "hardlinks":
            v = [json_text(p) for p in v]
        elif f.name == "xattrs":
            v = [{"name": json_xattr_text(k), "value": json_xattr_text(x)} for k, x in v]
        elif f.name == "raw_xattrs":
            v = [{**x, "name": json_xattr_text(x["name"]), "value": json_xattr_text(x["value"])} for x in v]
        elif f.name == "data_segments":
            v = [{"file_offset": a, "image_offset": b, "length": c} for a, b, c in v]
        out[f.name] = v
    return out


def cmd_stat(args) -> int:
    with open_image(args.image) as img:
        path = os.fsencode(args.path)
        if not path.startswith(b"/"):
            path = b"/" + path
        try:
            d = inode_details(img, path.rstrip(b"/") or b"/")
        except FileNotFoundError:
            raise InspectError(f"no such path in image: {display(path)}", path=args.image) from None
    if args.json:
        print_json(stat_json(d))
        return 0
    w = sys.stdout.write
    w(f"  path        {display(d.path)}\n")
    w(f"  nid         {d.nid} (byte offset {d.offset:#x}), {d.inode_kind} inode ({d.inode_size} bytes), "
      f"layout {d.layout}, i_format {d.format:#x}, i_ino {d.ino}\n")
    w(f"  type        {d.type}   mode {d.mode_string} ({d.mode:o})\n")
    w(f"  owner       uid {d.uid}, gid {d.gid}   nlink {d.nlink}\n")
    w(f"  size        {_size(d.size)}\n")
    w(f"  mtime       {d.mtime}.{d.mtime_nsec} ({format_mtime(d.mtime, d.mtime_nsec)})\n")
    if d.rdev_major_minor is not None:
        w(f"  rdev        {d.rdev} (major {d.rdev_major_minor[0]}, minor {d.rdev_major_minor[1]})\n")
    if d.symlink_target is not None:
        w(f"  target      {display(d.symlink_target)}\n")
    if d.payload is not None:
        w(f"  payload     {display(d.payload)}\n")
    if d.metacopy_size is not None:
        w(f"  digest      {d.digest or '-'}"
          f"{f' (fs-verity {d.digest_algorithm})' if d.digest else ' (metacopy without digest)'}\n")
    if d.data_segments:
        segs = ", ".join(f"[{a}+{c}] {'hole' if b is None else f'@{b:#x}'}" for a, b, c in d.data_segments[:8])
        w(f"  data        {segs}{' …' if len(d.data_segments) > 8 else ''}\n")
    if d.data_error:
        w(f"  data        chunk map unusable: {display(d.data_error)}\n")
    if len(d.hardlinks) > 1:
        w(f"  hardlinks   {', '.join(display(p) for p in d.hardlinks)}\n")
    if d.xattrs:
        w("  xattrs\n")
        for k, v in d.xattrs:
            w(f"    {display(k)}={display_value(v)}\n")
    if d.raw_xattrs:
        flt = f", filter {d.xattr_filter:#010x}" if d.xattr_filter is not None else ""
        w(f"  on-disk xattrs (icount {d.xattr_icount}, {d.xattr_size} bytes{flt})\n")
        for x in d.raw_xattrs:
            where = f"shared id {x['shared_id']}" if x["shared"] else "inline"
            w(f"    {display(x['name'])}={display_value(x['value'])}   [{where} @{x['offset']:#x}]\n")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("info", parents=[common], help="header, superblock and census of images")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("stat", parents=[common], help="one inode of an image in full")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_stat)
