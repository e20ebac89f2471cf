"""Unity: the sheet PNG's own import settings (hero.png.meta), Texture Type Sprite, Sprite Mode Multiple.

Dropped into Assets/ together with hero.png BEFORE Unity first imports the PNG (Unity reads a .meta it
finds beside a new asset; one it wrote itself would be replaced), Unity slices the sheet without a
plugin. Layout follows what Unity 2021.3/2022.3 LTS write (TextureImporter serializedVersion 12,
platformSettings serializedVersion 3); fields left out take Unity's defaults on import.
- Pixel art settings: filterMode 0 (Point), textureCompression 0 (none), mipmaps off,
  alphaIsTransparency 1, spritePixelsToUnits = the most common frame height (one sprite = one unit).
- rect origin is the BOTTOM-left of the texture: y = page height - frame.y - frame.h.
- pivot: centre (alignment 0); for a trimmed frame, the centre of its untrimmed box (alignment 9,
  Custom), so trimmed sprites stay aligned with each other.
- guid: md5 of the PNG's file name, so a re-export keeps every reference to the sheet; spriteID and
  internalID: hashes of the guid and the sprite's name (stable, distinct). Two sheets with the same file
  name in one project get the same guid: Unity then gives one of them a new one (with a warning).
One .meta per page (per_page); its name is the page PNG's name + ".meta".
Strings are YAML plain scalars when they are safe as such, else double-quoted with escapes (\\uXXXX for
non-ASCII, as Unity writes them).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

from scarlet_moon.exporters.base import AtlasFormat, AtlasTarget, by_label
from scarlet_moon.exporters.model import Frame

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ .()-]*")
MAX_TEXTURE_SIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)  # Unity's Max Size choices
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}

HEADER = """\
fileFormatVersion: 2
guid: {guid}
TextureImporter:
  internalIDToNameTable: []
  externalObjects: {{}}
  serializedVersion: 12
  mipmaps:
    mipMapMode: 0
    enableMipMap: 0
    sRGBTexture: 1
    linearTexture: 0
    fadeOut: 0
    borderMipMap: 0
    mipMapsPreserveCoverage: 0
    alphaTestReferenceValue: 0.5
    mipMapFadeDistanceStart: 1
    mipMapFadeDistanceEnd: 3
  bumpmap:
    convertToNormalMap: 0
    externalNormalMap: 0
    heightScale: 0.25
    normalMapFilter: 0
  isReadable: 0
  streamingMipmaps: 0
  streamingMipmapsPriority: 0
  vTOnly: 0
  grayScaleToAlpha: 0
  generateCubemap: 6
  cubemapConvolution: 0
  seamlessCubemap: 0
  textureFormat: 1
  maxTextureSize: {max_size}
  textureSettings:
    serializedVersion: 2
    filterMode: 0
    aniso: 1
    mipBias: 0
    wrapU: 1
    wrapV: 1
    wrapW: 1
  nPOTScale: 0
  lightmap: 0
  compressionQuality: 50
  spriteMode: 2
  spriteExtrude: 1
  spriteMeshType: 0
  alignment: 0
  spritePivot: {{x: 0.5, y: 0.5}}
  spritePixelsToUnits: {ppu}
  spriteBorder: {{x: 0, y: 0, z: 0, w: 0}}
  spriteGenerateFallbackPhysicsShape: 1
  alphaUsage: 1
  alphaIsTransparency: 1
  spriteTessellationDetail: -1
  textureType: 8
  textureShape: 1
  singleChannelComponent: 0
  flipbookRows: 1
  flipbookColumns: 1
  maxTextureSizeSet: 0
  compressionQualitySet: 0
  textureFormatSet: 0
  ignorePngGamma: 0
  applyGammaDecoding: 0
  swizzle: 50462976
  cookieLightType: 0
  platformSettings:
  - serializedVersion: 3
    buildTarget: DefaultTexturePlatform
    maxTextureSize: {max_size}
    resizeAlgorithm: 0
    textureFormat: -1
    textureCompression: 0
    compressionQuality: 50
    crunchedCompression: 0
    allowsAlphaSplitting: 0
    overridden: 0
    ignorePlatformSupport: 0
    androidETC2FallbackOverride: 0
    forceMaximumCompressionQuality_BC6H_BC7: 0
  spriteSheet:
    serializedVersion: 2
    sprites:
"""

SPRITE = """\
    - serializedVersion: 2
      name: {name}
      rect:
        serializedVersion: 2
        x: {x}
        y: {y}
        width: {w}
        height: {h}
      alignment: {alignment}
      pivot: {{x: {px}, y: {py}}}
      border: {{x: 0, y: 0, z: 0, w: 0}}
      outline: []
      physicsShape: []
      tessellationDetail: 0
      bones: []
      spriteID: {sprite_id}
      internalID: {internal_id}
      vertices: []
      indices: 
      edges: []
      weights: []
"""

FOOTER = """\
    outline: []
    physicsShape: []
    bones: []
    spriteID: 
    internalID: 0
    vertices: []
    indices: 
    edges: []
    weights: []
    secondaryTextures: []
    nameFileIdTable:
{names}  mipmapLimitGroupName: 
  pSDRemoveMatte: 0
  userData: 
  assetBundleName: 
  assetBundleVariant: 
"""


def yaml_str(text: str) -> str:
    """A YAML scalar reading back as `text`: plain when unambiguous, else double-quoted."""
    if _PLAIN.fullmatch(text) and text == text.strip() and text.lower() not in _YAML_WORDS:
        return text
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(f"\\U{ord(ch):08X}")
    return '"' + "".join(out) + '"'


def guid_for(image: str) -> str:
    """32 lowercase hex digits, a function of the PNG's file name only."""
    return hashlib.md5(f"scarlet-moon:{image}".encode("utf-8", "surrogatepass")).hexdigest()


def sprite_ids(guid: str, name: str) -> tuple[str, int]:
    """(spriteID: 32 hex digits, internalID: a non-zero signed 64-bit int) for a sprite of this texture."""
    digest = hashlib.sha256(f"{guid}:{name}".encode("utf-8", "surrogatepass")).digest()
    internal = int.from_bytes(digest[16:24], "little", signed=True) or 1
    return digest[:16].hex(), internal


def _pivot(f: Frame) -> tuple[int, float, float]:
    """(alignment, pivot x, pivot y): the centre of the untrimmed box, in the rect's 0..1 units, y up."""
    if not f.trimmed:
        return 0, 0.5, 0.5
    below = f.source_h - f.offset_y - f.h  # untrimmed rows under the stored rect
    return 9, round((f.source_w / 2 - f.offset_x) / f.w, 6), round((f.source_h / 2 - below) / f.h, 6)


class Unity(AtlasFormat):
    reads_pixels = False  # page sizes only: renderable in a worker
    name = "unity"
    description = "Unity sprite-sheet import settings (hero.png.meta, Sprite Mode Multiple, point filter)"
    suffix = ".png.meta"
    engine = "Unity 2021.3+ (TextureImporter .meta; not run here)"
    per_page = True

    def render(self, target: AtlasTarget) -> str:
        page, image = target.pages[0], target.images[0]
        if target.atlas_name != image + ".meta":
            raise ValueError(
                f"a Unity .meta must be named after its PNG ({image + '.meta'!r}, not "
                f"{target.atlas_name!r}): name the sheet with a lower-case .png"
            )
        guid = guid_for(image)
        page_w, page_h = page.size
        heights = Counter(f.source_h for f in page.frames)
        ppu = heights.most_common(1)[0][0] if heights else 100
        max_size = next((s for s in MAX_TEXTURE_SIZES if s >= max(page.size)), MAX_TEXTURE_SIZES[-1])
        out = [HEADER.format(guid=guid, ppu=ppu, max_size=max_size)]
        table = []
        for f in by_label(page.frames):
            sprite_id, internal_id = sprite_ids(guid, f.name)
            alignment, px, py = _pivot(f)
            name = yaml_str(f.name)
            out.append(
                SPRITE.format(
                    name=name,
                    x=f.x,
                    y=page_h - f.y - f.h,
                    w=f.w,
                    h=f.h,
                    alignment=alignment,
                    px=px,
                    py=py,
                    sprite_id=sprite_id,
                    internal_id=internal_id,
                )
            )
            table.append(f"      {name}: {internal_id}\n")
        out.append(FOOTER.format(names="".join(table)))
        return "".join(out)
