"""The classes of the demo world: its "ImageNet".

41 procedurally drawn product classes in nine look-alike groups (footwear, tops, bras and
swimwear, dresses, bags, eyewear, hats, small knits, trousers). The shop sells ten of them
(`SHOP`, the demo catalog's categories); the classifier is trained on all of them, as
ImageNet's 1000 classes hold Amazon's categories. Look-alikes share colour priors and draw
on the same canvas parts, so telling a sneaker from a running shoe takes detail, not
colour. One function per class draws it upright on the 0-100 design grid; `look.shape`
(four numbers in [0, 1]) varies proportions within a class."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .canvas import COLOURS, Canvas, Look, ellipse_arc, shade

# --- the shop's ten categories ---------------------------------------------------------

def draw_tshirt(c: Canvas, look: Look) -> None:
    scoop = ellipse_arc(50, 16, 10, 8, 0, 180)[1:-1]  # neckline, right to left
    c.poly([(40, 16), (29, 18), (8, 36), (17, 49), (28, 40), (28, 88), (72, 88), (72, 40),
            (83, 49), (92, 36), (71, 18), (60, 16)] + scoop)
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(50, 16, 10, 8, 0, 180), dark, 2.2)  # collar rib
    c.t_line([(9, 38), (18, 47)], dark, 1.5)  # sleeve hems
    c.t_line([(91, 38), (82, 47)], dark, 1.5)
    c.t_line([(28, 85), (72, 85)], dark, 1.2)  # bottom hem


def draw_brassiere(c: Canvas, look: Look) -> None:
    left = [(37, 34)] + ellipse_arc(33, 56, 16, 14, 0, 180) + [(20, 48)]
    right = [(63, 34), (80, 48)] + ellipse_arc(67, 56, 16, 14, 0, 180)
    c.poly(left)
    c.poly(right)
    c.poly([(47, 54), (53, 54), (52, 66), (48, 66)])  # centre gore
    c.poly([(17, 56), (5, 60), (6, 70), (20, 67)])  # side wings / band
    c.poly([(83, 56), (95, 60), (94, 70), (80, 67)])
    c.line([(37, 35), (30, 10)], 2.5)  # straps
    c.line([(63, 35), (70, 10)], 2.5)
    dark = shade(look.colour, 0.65)
    c.t_line(ellipse_arc(33, 56, 16, 14, 5, 175), dark, 1.6)  # underwires
    c.t_line(ellipse_arc(67, 56, 16, 14, 5, 175), dark, 1.6)
    lace = shade(look.colour, 1.35)
    for x0, x1 in ((20, 37), (63, 80)):  # lace trim along the cup tops
        for t in np.linspace(0.1, 0.9, 5):
            x, y = x0 + (x1 - x0) * t, 48 - 14 * (t if x0 < 50 else 1 - t)
            c.t_ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), lace)
    c.t_ellipse((47.5, 52, 52.5, 57), look.accent)  # bow


def draw_sandal(c: Canvas, look: Look) -> None:
    sole = (186, 146, 96) if sum(look.colour) < 420 else (72, 56, 44)  # cork or leather
    c.t_poly([(8, 66), (86, 67), (94, 71), (90, 76), (30, 76), (24, 82), (8, 82), (6, 72)], sole)
    c.t_line([(9, 67), (87, 68)], shade(sole, 1.35), 1.6)  # footbed edge
    c.arc((56, 44, 92, 92), 190, 350, 7)  # wide toe strap
    c.arc((34, 36, 72, 100), 200, 340, 6)  # instep strap
    c.arc((8, 26, 40, 92), 205, 335, 4)  # ankle strap
    c.line([(14, 67), (17, 40)], 4.5)  # heel strap
    c.t_rounded((19, 31, 26, 38), 1, (200, 170, 90))  # buckle
    c.t_rounded((20.8, 32.8, 24.2, 36.2), 0.5, (90, 70, 40))


def draw_running_shoe(c: Canvas, look: Look) -> None:
    c.poly([(10, 68), (9, 48), (13, 36), (24, 32), (36, 40), (52, 45), (68, 50), (84, 56),
            (93, 63), (93, 69)])
    mid = shade(look.accent, 1.6)
    c.t_poly([(7, 66), (94, 66), (97, 72), (91, 79), (11, 79), (5, 73)], mid)  # midsole
    c.t_line([(8, 78), (92, 78)], (55, 55, 60), 2.5)  # outsole
    c.t_poly([(14, 36), (24, 33), (34, 39), (24, 41)], shade(look.colour, 0.45))  # collar
    c.t_poly([(22, 62), (48, 50), (76, 58), (70, 62), (48, 56), (28, 64)], look.accent)  # stripe
    for i in range(5):  # laces
        x, y = 38 + i * 6, 42 + i * 2.2
        c.t_line([(x - 2, y - 3), (x + 3, y + 2)], (245, 245, 245), 1.6)
    c.t_poly([(9, 50), (14, 50), (15, 66), (10, 66)], shade(look.colour, 0.7))  # heel tab


def draw_dress(c: Canvas, look: Look) -> None:
    c.line([(38, 8), (40, 22)], 2.5)
    c.line([(62, 8), (60, 22)], 2.5)
    c.poly([(36, 21), (44, 21), (50, 28), (56, 21), (64, 21), (61, 44), (39, 44)])
    c.poly([(39, 43), (61, 43), (84, 90), (68, 93), (50, 90), (32, 93), (16, 90)])
    c.t_poly([(39, 42), (61, 42), (61.5, 47), (38.5, 47)], shade(look.colour, 0.6))  # belt
    c.t_line([(44, 21), (50, 28), (56, 21)], shade(look.colour, 0.7), 1.2)  # neckline
    c.t_line([(16, 89.5), (32, 92.5), (50, 89.5), (68, 92.5), (84, 89.5)],
             shade(look.colour, 0.75), 1.2)  # hem


def draw_handbag(c: Canvas, look: Look) -> None:
    c.poly([(18, 42), (82, 42), (88, 80), (84, 86), (16, 86), (12, 80)])
    dark = shade(look.colour, 0.6)
    c.t_arc((30, 16, 70, 64), 180, 360, dark, 4.5)  # handle
    c.t_poly([(18, 42), (82, 42), (80, 57), (50, 64), (20, 57)], shade(look.colour, 0.8))
    c.t_line([(20, 57), (50, 64), (80, 57)], dark, 1.2)
    c.t_ellipse((46.5, 59.5, 53.5, 66.5), (214, 176, 80), outline=(150, 115, 40), width=0.8)
    c.t_line([(16, 84), (84, 84)], dark, 1.0)


def draw_sunglasses(c: Canvas, look: Look) -> None:
    c.t_rounded((14, 38, 46, 64), 10, (28, 30, 40, 235))  # lenses
    c.t_rounded((54, 38, 86, 64), 10, (28, 30, 40, 235))
    c.t_line([(18, 46), (28, 42)], (255, 255, 255, 110), 2.5)  # glare
    c.t_line([(58, 46), (68, 42)], (255, 255, 255, 110), 2.5)
    c.rounded((13, 37, 47, 65), 11, width=3.5)
    c.rounded((53, 37, 87, 65), 11, width=3.5)
    c.arc((44, 40, 56, 52), 190, 350, 3)  # bridge
    c.line([(13, 42), (3, 40)], 3)  # temple ends
    c.line([(87, 42), (97, 40)], 3)


def draw_hat(c: Canvas, look: Look) -> None:
    c.ellipse(6, 58, 94, 80)  # brim
    c.poly([(25, 68), (27, 36), (34, 25), (50, 22), (66, 25), (73, 36), (75, 68)])  # crown
    c.t_poly([(26, 52), (74, 52), (74.6, 62), (25.4, 62)], look.accent)  # band
    c.t_line([(42, 25), (50, 30), (58, 25)], shade(look.colour, 0.7), 1.2)  # crown dent
    c.t_arc((6, 58, 94, 80), 10, 170, shade(look.colour, 0.75), 1.2)  # brim edge


def draw_sock(c: Canvas, look: Look) -> None:
    c.poly([(30, 8), (56, 8), (58, 56), (84, 64), (93, 74), (88, 88), (70, 90), (40, 86),
            (30, 77), (28, 60)])
    dark = shade(look.colour, 0.7)
    c.t_poly([(30, 8), (56, 8), (56.3, 19), (29.7, 19)], dark)  # ribbed cuff
    for x in np.arange(33, 55, 3):
        c.t_line([(x, 9), (x, 18)], shade(look.colour, 0.55), 0.8)
    c.t_poly([(28, 66), (40, 74), (42, 86), (30, 77)], look.accent)  # heel
    c.t_poly([(82, 64), (93, 74), (88, 88), (80, 89)], look.accent)  # toe


def draw_jeans(c: Canvas, look: Look) -> None:
    c.poly([(24, 8), (76, 8), (82, 92), (59, 92), (50, 38), (41, 92), (18, 92)])
    dark, light = shade(look.colour, 0.65), shade(look.colour, 1.35)
    c.t_poly([(24, 8), (76, 8), (76.4, 15), (23.6, 15)], dark)  # waistband
    for x in (30, 44, 56, 70):
        c.t_rounded((x - 1, 7, x + 1, 17), 0.5, shade(look.colour, 0.5))  # belt loops
    c.t_line([(50, 15), (50, 34), (46, 38)], dark, 1.2)  # fly
    c.t_arc((22, 4, 40, 30), 0, 90, light, 1.2)  # pocket openings
    c.t_arc((60, 4, 78, 30), 90, 180, light, 1.2)
    c.t_line([(19, 88), (41, 88)], light, 1.2)  # hems
    c.t_line([(59, 88), (81, 88)], light, 1.2)
    c.t_ellipse((48.8, 10.3, 51.2, 12.7), (205, 170, 80))  # button


# --- footwear: side view, heel left, toe right, sole at y ~66-80 -------------------------

def draw_sneaker(c: Canvas, look: Look) -> None:
    top = 40 + 6 * look.shape[0]
    c.poly([(10, 70), (10, 50), (16, top + 2), (28, top), (40, 46), (56, 48), (74, 52),
            (88, 58), (94, 66), (94, 71)])
    c.t_poly([(8, 68), (95, 68), (96, 77), (9, 77)], (240, 240, 236))  # flat cupsole
    c.t_line([(9, 72.5), (95, 72.5)], shade(look.colour, 0.6), 1.0)  # sole stitch
    c.t_poly([(78, 56), (94, 64), (94, 68), (76, 68)], shade(look.colour, 0.8))  # toe cap
    for i in range(5):  # laces
        x, y = 38 + i * 6, 45 + i * 1.6
        c.t_line([(x - 2, y - 3), (x + 3, y + 2)], (245, 245, 245), 1.6)
    c.t_ellipse((20, 54, 28, 62), look.accent)  # ankle logo


def draw_boot(c: Canvas, look: Look) -> None:
    top = 10 + 26 * look.shape[0]  # ankle boot .. tall boot
    c.poly([(12, 74), (12, top), (40, top), (42, 46), (60, 52), (80, 56), (92, 64), (92, 74)])
    c.t_poly([(10, 72), (94, 72), (94, 80), (30, 80), (28, 84), (12, 84), (10, 80)],
             (48, 40, 34))  # sole and block heel
    c.t_line([(12, top + 3), (40, top + 3)], shade(look.colour, 0.65), 1.5)  # shaft hem
    c.t_line([(26, top + 4), (26, 66)], shade(look.colour, 0.7), 1.0)  # side seam
    c.t_rounded((14, top - 4, 19, top + 5), 1, shade(look.colour, 0.6))  # pull tab


def draw_loafer(c: Canvas, look: Look) -> None:
    c.poly([(10, 72), (11, 56), (22, 52), (40, 56), (60, 54), (80, 58), (92, 64), (93, 72)])
    c.t_poly([(9, 71), (94, 71), (95, 76), (10, 76)], (60, 42, 30))  # thin leather sole
    c.t_poly([(12, 74), (24, 74), (24, 80), (12, 80)], (50, 36, 26))  # low heel
    c.t_poly([(50, 55), (66, 55), (68, 61), (48, 61)], shade(look.colour, 0.7))  # saddle
    c.t_line(ellipse_arc(70, 60, 18, 6, 180, 300), shade(look.colour, 0.6), 1.0)  # apron seam


def draw_slipper(c: Canvas, look: Look) -> None:
    back = 12 + 22 * look.shape[0]  # closed heel .. open back (mule)
    c.poly([(back, 74), (back + 2, 60), (44, 50), (66, 48), (84, 54), (93, 64), (93, 74)])
    c.t_poly([(10, 72), (95, 72), (94, 78), (12, 78)], shade(look.colour, 0.8))  # soft sole
    c.t_ellipse((back - 2, 52, back + 24, 62), shade(look.colour, 1.45))  # fluffy collar


def draw_flipflop(c: Canvas, look: Look) -> None:
    sole = (186, 146, 96) if sum(look.colour) < 420 else (72, 56, 44)
    c.t_poly([(6, 70), (88, 70), (95, 73), (90, 77), (8, 77)], sole)  # flat sole
    c.t_line([(7, 70.5), (89, 70.5)], shade(sole, 1.35), 1.4)
    c.arc((44, 40, 94, 100), 200, 330, 5)  # thong strap over the foot
    c.line([(68, 70), (66, 58)], 3)  # toe post


def draw_clog(c: Canvas, look: Look) -> None:
    c.poly([(36, 70), (40, 54), (56, 44), (76, 46), (90, 56), (95, 68)])  # closed toe, open back
    c.t_poly([(8, 68), (96, 68), (96, 82), (10, 82), (6, 74)], (214, 188, 140))  # wooden sole
    c.t_line([(8, 75), (96, 75)], (170, 140, 96), 1.0)
    if look.shape[1] > 0.5:  # heel strap
        c.arc((8, 40, 46, 96), 200, 320, 3.5)
    for i in range(3):  # studs along the rim
        c.t_ellipse((46 + i * 14, 52 - i * 2, 49 + i * 14, 55 - i * 2), (200, 200, 205))


# --- tops: front view ------------------------------------------------------------------

def draw_polo(c: Canvas, look: Look) -> None:
    c.poly([(40, 16), (29, 18), (8, 36), (17, 49), (28, 40), (28, 88), (72, 88), (72, 40),
            (83, 49), (92, 36), (71, 18), (60, 16), (50, 22)])
    dark = shade(look.colour, 0.7)
    c.t_poly([(40, 15), (50, 22), (44, 29), (36, 18)], shade(look.colour, 1.2))  # collar
    c.t_poly([(60, 15), (50, 22), (56, 29), (64, 18)], shade(look.colour, 1.2))
    c.t_line([(50, 22), (50, 38)], dark, 1.2)  # placket
    for y in (26, 32):
        c.t_ellipse((48.6, y - 1.4, 51.4, y + 1.4), (240, 240, 236))
    c.t_line([(9, 38), (18, 47)], dark, 1.5)
    c.t_line([(91, 38), (82, 47)], dark, 1.5)


def draw_tank_top(c: Canvas, look: Look) -> None:
    neck = 22 + 10 * look.shape[0]
    c.poly([(34, 10), (41, 10)] + ellipse_arc(50, 10, 9, neck - 10, 180, 0)[::-1][1:-1]
           + [(59, 10), (66, 10), (70, 34), (72, 88), (28, 88), (30, 34)])
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(50, 10, 9, neck - 10, 0, 180), dark, 1.6)
    c.t_line([(28, 85), (72, 85)], dark, 1.2)


def draw_sweatshirt(c: Canvas, look: Look) -> None:
    scoop = ellipse_arc(50, 16, 10, 8, 0, 180)[1:-1]
    c.poly([(40, 16), (28, 18), (10, 40), (4, 84), (15, 86), (24, 48), (26, 90), (74, 90),
            (76, 48), (85, 86), (96, 84), (90, 40), (72, 18), (60, 16)] + scoop)
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(50, 16, 10, 8, 0, 180), dark, 2.5)  # ribbed collar
    c.t_poly([(26, 83), (74, 83), (74, 90), (26, 90)], dark)  # waistband
    c.t_poly([(4, 80), (15, 82), (15, 86), (4, 84)], dark)  # cuffs
    c.t_poly([(85, 82), (96, 80), (96, 84), (85, 86)], dark)
    if look.shape[1] > 0.5:  # kangaroo pocket
        c.t_line([(36, 82), (38, 64), (62, 64), (64, 82)], dark, 1.2)


def draw_cardigan(c: Canvas, look: Look) -> None:
    c.poly([(40, 14), (28, 18), (10, 40), (4, 84), (15, 86), (24, 48), (26, 90), (74, 90),
            (76, 48), (85, 86), (96, 84), (90, 40), (72, 18), (60, 14), (50, 44)])
    dark = shade(look.colour, 0.65)
    c.t_line([(40, 14), (50, 44), (60, 14)], dark, 2.0)  # V neck band
    c.t_line([(50, 44), (50, 90)], dark, 1.4)  # front opening
    for y in np.linspace(50, 84, 5):
        c.t_ellipse((51.2, y - 1.4, 54, y + 1.4), look.accent)  # buttons
    c.t_poly([(4, 80), (15, 82), (15, 86), (4, 84)], dark)
    c.t_poly([(85, 82), (96, 80), (96, 84), (85, 86)], dark)


# --- bras and swimwear -----------------------------------------------------------------

def draw_bikini(c: Canvas, look: Look) -> None:
    c.poly([(20, 56), (42, 56), (33, 34)])  # triangle cups
    c.poly([(58, 56), (80, 56), (67, 34)])
    c.line([(42, 55), (58, 55)], 1.5)
    c.line([(33, 35), (44, 8)], 1.2)  # halter strings
    c.line([(67, 35), (56, 8)], 1.2)
    c.line([(20, 55), (6, 58)], 1.2)
    c.line([(80, 55), (94, 58)], 1.2)
    if look.shape[0] > 0.35:  # the bottom, shown below
        c.poly([(30, 72), (70, 72), (58, 92), (42, 92)])
        c.t_line([(30, 72), (70, 72)], shade(look.colour, 0.7), 1.2)


def draw_sports_bra(c: Canvas, look: Look) -> None:
    c.poly([(18, 64), (22, 42), (36, 32), (50, 40), (64, 32), (78, 42), (82, 64)])
    c.poly([(18, 62), (82, 62), (82, 76), (18, 76)])  # wide band
    c.line([(30, 36), (36, 8)], 6)  # wide straps
    c.line([(70, 36), (64, 8)], 6)
    c.t_poly([(18, 64), (82, 64), (82, 76), (18, 76)], look.accent)
    c.t_line([(50, 40), (50, 62)], shade(look.colour, 0.7), 1.0)


def draw_maillot(c: Canvas, look: Look) -> None:
    c.poly([(35, 8), (42, 8), (46, 30), (54, 30), (58, 8), (65, 8), (70, 40), (64, 62),
            (74, 84), (58, 92), (50, 82), (42, 92), (26, 84), (36, 62), (30, 40)])
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(40, 40, 9, 8, 10, 170), dark, 1.2)  # cup seams
    c.t_line(ellipse_arc(60, 40, 9, 8, 10, 170), dark, 1.2)
    c.t_line([(26, 84), (42, 92), (50, 82), (58, 92), (74, 84)], dark, 1.2)


# --- dresses ---------------------------------------------------------------------------

def draw_gown(c: Canvas, look: Look) -> None:
    c.line([(40, 6), (42, 18)], 2.0)
    c.line([(60, 6), (58, 18)], 2.0)
    c.poly([(38, 17), (46, 17), (50, 24), (54, 17), (62, 17), (58, 38), (42, 38)])
    hem = 88 + 10 * look.shape[0]
    c.poly([(42, 37), (58, 37), (90, hem), (10, hem)])  # floor-length skirt
    c.t_line([(41, 38), (59, 38)], shade(look.colour, 0.6), 2.0)  # waist seam
    for x in (30, 50, 70):  # folds
        c.t_line([(50 + (x - 50) * 0.2, 42), (x, hem - 2)], shade(look.colour, 0.85), 1.0)


def draw_miniskirt(c: Canvas, look: Look) -> None:
    hem = 62 + 16 * look.shape[0]
    c.poly([(30, 28), (70, 28), (84, hem), (16, hem)])
    c.t_poly([(30, 28), (70, 28), (70.8, 35), (29.2, 35)], shade(look.colour, 0.65))  # band
    c.t_line([(16, hem - 1), (84, hem - 1)], shade(look.colour, 0.75), 1.2)
    for x in (36, 50, 64):  # pleats
        c.t_line([(x, 36), (x + (x - 50) * 0.4, hem - 2)], shade(look.colour, 0.8), 0.9)


def draw_apron(c: Canvas, look: Look) -> None:
    c.poly([(36, 20), (64, 20), (66, 44), (80, 46), (76, 92), (24, 92), (20, 46), (34, 44)])
    c.line([(36, 21), (42, 4)], 1.5)  # neck loop
    c.line([(64, 21), (58, 4)], 1.5)
    c.line([(20, 47), (4, 54)], 1.5)  # waist ties
    c.line([(80, 47), (96, 54)], 1.5)
    c.t_rounded((36, 56, 64, 72), 2, shade(look.colour, 0.8))  # front pocket
    c.t_line([(50, 56), (50, 72)], shade(look.colour, 0.6), 1.0)


# --- bags ------------------------------------------------------------------------------

def draw_backpack(c: Canvas, look: Look) -> None:
    c.rounded((24, 18, 76, 92), 14)
    c.arc((40, 8, 60, 26), 180, 360, 3)  # grab handle
    dark = shade(look.colour, 0.65)
    c.t_rounded((32, 58, 68, 86), 6, shade(look.colour, 0.8))  # front pocket
    c.t_line([(33, 62), (67, 62)], dark, 1.2)  # zips
    c.t_arc((28, 20, 72, 64), 200, 340, dark, 1.2)
    c.t_line([(26, 30), (24, 84)], dark, 2.0)  # shoulder straps at the sides
    c.t_line([(74, 30), (76, 84)], dark, 2.0)


def draw_purse(c: Canvas, look: Look) -> None:
    c.rounded((18, 44, 82, 76), 6)
    c.t_poly([(18, 46), (82, 46), (50, 64)], shade(look.colour, 0.8))  # flap
    c.t_line([(18, 46), (50, 64), (82, 46)], shade(look.colour, 0.6), 1.2)
    c.t_ellipse((47, 61, 53, 67), (214, 176, 80), outline=(150, 115, 40), width=0.8)
    if look.shape[0] > 0.4:  # chain strap
        c.t_arc((20, 10, 80, 90), 200, 340, (200, 176, 96), 1.6)


def draw_tote(c: Canvas, look: Look) -> None:
    c.poly([(22, 36), (78, 36), (74, 92), (26, 92)])
    dark = shade(look.colour, 0.6)
    c.t_arc((30, 12, 50, 52), 180, 360, dark, 2.2)  # two thin handles
    c.t_arc((50, 12, 70, 52), 180, 360, dark, 2.2)
    c.t_line([(22, 40), (78, 40)], dark, 1.0)
    c.t_rounded((40, 56, 60, 70), 1, look.accent)  # print / label


def draw_mailbag(c: Canvas, look: Look) -> None:
    c.rounded((14, 40, 86, 86), 4)
    c.t_arc((6, 2, 94, 84), 190, 350, shade(look.colour, 0.55), 3.0)  # long shoulder strap
    c.t_rounded((14, 40, 86, 72), 4, shade(look.colour, 0.8))  # large flap
    for x in (34, 66):  # buckles
        c.t_rounded((x - 4, 64, x + 4, 74), 1, (200, 170, 90))


# --- eyewear ---------------------------------------------------------------------------

def draw_eyeglasses(c: Canvas, look: Look) -> None:
    r = 4 + 10 * look.shape[0]  # rectangular .. round
    c.t_rounded((14, 38, 46, 64), r, (220, 232, 240, 60))  # clear lenses
    c.t_rounded((54, 38, 86, 64), r, (220, 232, 240, 60))
    c.rounded((13, 37, 47, 65), r + 1, width=1.8)
    c.rounded((53, 37, 87, 65), r + 1, width=1.8)
    c.arc((44, 40, 56, 52), 190, 350, 1.8)
    c.line([(13, 42), (3, 40)], 1.8)
    c.line([(87, 42), (97, 40)], 1.8)


def draw_goggles(c: Canvas, look: Look) -> None:
    c.rounded((10, 32, 90, 70), 16)  # frame
    c.t_rounded((15, 37, 85, 65), 13, (*look.accent, 220))  # one wide mirrored lens
    c.t_line([(22, 44), (40, 40)], (255, 255, 255, 120), 3)
    c.t_poly([(44, 66), (56, 66), (50, 58)], shade(look.colour, 0.6))  # nose notch
    c.line([(10, 50), (0, 48)], 6)  # strap
    c.line([(90, 50), (100, 48)], 6)


# --- hats ------------------------------------------------------------------------------

def draw_cowboy_hat(c: Canvas, look: Look) -> None:
    c.poly(ellipse_arc(50, 68, 46, 10, 0, 180) + [(4, 68), (0, 54), (12, 62), (88, 62),
                                                  (100, 54), (96, 68)])  # curled brim
    c.poly([(28, 66), (30, 34), (40, 26), (50, 32), (60, 26), (70, 34), (72, 66)])  # crown
    c.t_poly([(29, 54), (71, 54), (71.6, 61), (28.4, 61)], shade(look.colour, 0.55))
    c.t_line([(40, 27), (50, 33), (60, 27)], shade(look.colour, 0.7), 1.2)  # pinch


def draw_cap(c: Canvas, look: Look) -> None:
    c.poly(ellipse_arc(48, 66, 32, 40, 180, 360) + [(80, 66), (16, 66)])  # dome
    c.poly([(70, 60), (97, 66), (94, 74), (66, 70)])  # visor
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(48, 66, 12, 40, 190, 350), dark, 1.0)  # panel seams
    c.t_ellipse((45, 24, 51, 30), dark)  # top button
    c.t_rounded((34, 44, 60, 56), 2, look.accent)  # front logo


def draw_beanie(c: Canvas, look: Look) -> None:
    c.poly(ellipse_arc(50, 66, 30, 42, 180, 360) + [(80, 66), (20, 66)])
    c.rounded((18, 62, 82, 86), 3)  # folded cuff
    dark = shade(look.colour, 0.7)
    for x in np.arange(22, 80, 4):  # rib lines
        c.t_line([(x, 64), (x, 84)], dark, 0.8)
    if look.shape[0] > 0.4:  # pompom
        c.ellipse(40, 12, 60, 32)


def draw_sombrero(c: Canvas, look: Look) -> None:
    wide = 44 + 6 * look.shape[0]
    c.ellipse(50 - wide, 62, 50 + wide, 84)  # very wide brim
    c.poly([(36, 70), (40, 24), (50, 16), (60, 24), (64, 70)])  # tall conical crown
    zig = [(36 + i * 3.5, 58 if i % 2 else 64) for i in range(9)]
    c.t_line(zig, look.accent, 1.6)  # embroidered band
    c.t_arc((50 - wide, 62, 50 + wide, 84), 10, 170, shade(look.colour, 0.7), 1.6)


# --- small knits -----------------------------------------------------------------------

def draw_stocking(c: Canvas, look: Look) -> None:
    c.poly([(28, 18), (60, 18), (62, 56), (84, 62), (94, 76), (86, 90), (60, 92), (34, 86),
            (26, 72), (26, 50)])
    c.t_rounded((24, 8, 64, 24), 4, (246, 246, 242))  # fluffy white cuff
    c.t_arc((50, 0, 60, 14), 180, 360, (246, 246, 242), 1.4)  # hanging loop
    c.t_ellipse((40, 44, 50, 54), look.accent)  # appliqué


def draw_mitten(c: Canvas, look: Look) -> None:
    c.ellipse(32, 12, 76, 80)  # hand
    c.poly([(32, 60), (34, 82), (72, 82), (76, 56)])
    c.ellipse(14, 40, 38, 60)  # thumb
    c.rounded((30, 76, 76, 94), 3)  # ribbed cuff
    for x in np.arange(33, 75, 4):
        c.t_line([(x, 78), (x, 92)], shade(look.colour, 0.65), 0.8)


# --- trousers --------------------------------------------------------------------------

def draw_shorts(c: Canvas, look: Look) -> None:
    hem = 56 + 14 * look.shape[0]
    c.poly([(24, 16), (76, 16), (82, hem), (56, hem + 2), (50, 40), (44, hem + 2), (18, hem)])
    dark = shade(look.colour, 0.65)
    c.t_poly([(24, 16), (76, 16), (76.4, 23), (23.6, 23)], dark)
    c.t_line([(50, 23), (50, 36)], dark, 1.2)
    c.t_line([(19, hem - 2), (44, hem)], shade(look.colour, 1.3), 1.2)
    c.t_line([(56, hem), (81, hem - 2)], shade(look.colour, 1.3), 1.2)


def draw_trousers(c: Canvas, look: Look) -> None:
    c.poly([(28, 8), (72, 8), (75, 92), (56, 92), (50, 34), (44, 92), (25, 92)])
    dark = shade(look.colour, 0.75)
    c.t_line([(36, 16), (35, 90)], dark, 0.9)  # pressed creases
    c.t_line([(64, 16), (65, 90)], dark, 0.9)
    c.t_line([(28, 13), (72, 13)], dark, 1.0)  # waist seam
    c.t_line([(31, 18), (36, 26)], dark, 0.9)  # slanted side pockets
    c.t_line([(69, 18), (64, 26)], dark, 0.9)


def draw_leggings(c: Canvas, look: Look) -> None:
    c.poly([(32, 8), (68, 8), (66, 50), (61, 92), (52, 92), (50, 36), (48, 92), (39, 92),
            (34, 50)])
    c.t_poly([(32, 8), (68, 8), (67.8, 16), (32.2, 16)], shade(look.colour, 0.7))  # waistband
    c.t_line([(58, 20), (56, 90)], look.accent, 1.2)  # side stripes
    c.t_line([(42, 20), (44, 90)], look.accent, 1.2)


@dataclass(frozen=True)
class Category:
    key: str
    name: str  # display name, as an ImageNet-style class string
    group: str  # look-alike group
    draw: Callable[[Canvas, Look], None]
    colours: dict[str, float] | None = None  # colour prior (None: uniform)
    material: str = "smooth"  # usual surface texture (MATERIALS); others occur too


_SANDALS = {"brown": 4, "black": 3, "beige": 3, "white": 1, "red": 1, "navy": 1, "olive": 1}
_LEATHER = {"brown": 4, "black": 4, "beige": 2, "navy": 1, "red": 1, "grey": 1, "olive": 1}
_LINGERIE = {"black": 3, "white": 2, "pink": 3, "beige": 3, "red": 2, "purple": 1, "navy": 1}
_BAGS = {"black": 4, "brown": 4, "beige": 3, "red": 2, "navy": 1, "pink": 1, "olive": 1}
_FRAMES = {"black": 5, "brown": 3, "grey": 2, "red": 1, "white": 1, "blue": 1, "purple": 1}
_DENIM = {"denim": 6, "navy": 4, "blue": 3, "black": 3, "grey": 2, "white": 1, "beige": 1}
_TROUSERS = {"denim": 2, "navy": 3, "blue": 2, "black": 4, "grey": 3, "beige": 3, "olive": 2,
             "brown": 1, "white": 1}

# The world's classes. The first ten are the shop's categories (demo catalog order).
CLASSES: tuple[Category, ...] = (
    Category("tshirt", "Jersey, T-shirt", "tops", draw_tshirt, material="weave"),
    Category("brassiere", "Brassiere", "bras", draw_brassiere, _LINGERIE, material="smooth"),
    Category("sandal", "Sandal", "footwear", draw_sandal, _SANDALS, material="leather"),
    Category("running_shoe", "Running shoe", "footwear", draw_running_shoe, material="mesh"),
    Category("dress", "Dress", "dresses", draw_dress, material="smooth"),
    Category("handbag", "Handbag", "bags", draw_handbag, _BAGS, material="leather"),
    Category("sunglasses", "Sunglasses", "eyewear", draw_sunglasses, _FRAMES, material="smooth"),
    Category("hat", "Hat", "hats", draw_hat, material="weave"),
    Category("sock", "Sock", "knits", draw_sock, material="knit"),
    Category("jeans", "Jeans", "trousers", draw_jeans, _DENIM, material="twill"),
    # look-alikes the shop does not sell
    Category("sneaker", "Sneaker", "footwear", draw_sneaker, material="weave"),
    Category("boot", "Cowboy boot", "footwear", draw_boot, _LEATHER, material="leather"),
    Category("loafer", "Loafer", "footwear", draw_loafer, _LEATHER, material="leather"),
    Category("slipper", "Slipper", "footwear", draw_slipper, _SANDALS, material="knit"),
    Category("flipflop", "Flip-flop", "footwear", draw_flipflop, _SANDALS, material="smooth"),
    Category("clog", "Clog", "footwear", draw_clog, _SANDALS, material="leather"),
    Category("polo", "Polo shirt", "tops", draw_polo, material="mesh"),
    Category("tank_top", "Tank top", "tops", draw_tank_top, material="knit"),
    Category("sweatshirt", "Sweatshirt", "tops", draw_sweatshirt, material="knit"),
    Category("cardigan", "Cardigan", "tops", draw_cardigan, material="knit"),
    Category("bikini", "Bikini", "bras", draw_bikini, _LINGERIE, material="smooth"),
    Category("sports_bra", "Sports bra", "bras", draw_sports_bra, material="mesh"),
    Category("maillot", "Maillot", "bras", draw_maillot, _LINGERIE, material="smooth"),
    Category("gown", "Gown", "dresses", draw_gown, material="smooth"),
    Category("miniskirt", "Miniskirt", "dresses", draw_miniskirt, material="twill"),
    Category("apron", "Apron", "dresses", draw_apron, material="weave"),
    Category("backpack", "Backpack", "bags", draw_backpack, material="weave"),
    Category("purse", "Purse", "bags", draw_purse, _BAGS, material="leather"),
    Category("tote", "Shopping bag", "bags", draw_tote, material="weave"),
    Category("mailbag", "Mailbag", "bags", draw_mailbag, _BAGS, material="leather"),
    Category("eyeglasses", "Eyeglasses", "eyewear", draw_eyeglasses, _FRAMES, material="smooth"),
    Category("goggles", "Ski goggles", "eyewear", draw_goggles, material="smooth"),
    Category("cowboy_hat", "Cowboy hat", "hats", draw_cowboy_hat, _LEATHER, material="leather"),
    Category("cap", "Baseball cap", "hats", draw_cap, material="mesh"),
    Category("beanie", "Beanie", "hats", draw_beanie, material="knit"),
    Category("sombrero", "Sombrero", "hats", draw_sombrero, material="weave"),
    Category("stocking", "Christmas stocking", "knits", draw_stocking, material="knit"),
    Category("mitten", "Mitten", "knits", draw_mitten, material="knit"),
    Category("shorts", "Shorts", "trousers", draw_shorts, _TROUSERS, material="twill"),
    Category("trousers", "Trousers", "trousers", draw_trousers, _TROUSERS, material="weave"),
    Category("leggings", "Leggings", "trousers", draw_leggings, material="knit"),
)
SHOP: tuple[Category, ...] = CLASSES[:10]  # the demo catalog's categories
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in CLASSES))


def colour_prior(cat: Category) -> np.ndarray:
    """(n_colours,) probabilities over COLOURS for this category."""
    w = np.ones(len(COLOURS)) if cat.colours is None else \
        np.array([cat.colours.get(n, 0.0) for n in COLOURS], dtype=float)
    return w / w.sum()
