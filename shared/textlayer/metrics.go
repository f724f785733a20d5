package textlayer

import "strings"

// MuPDF's positioned HTML states where each line starts (left, top) and
// its height, not where it ends. A line's width is estimated from its text
// with the advance widths (1/1000 em, characters 32–126) of the standard
// PDF fonts — Adobe's AFM metrics for Helvetica and Times — and of DejaVu
// Sans (from its TrueType hmtx table), LibreOffice's fallback on Linux:
// exact for text set in those fonts and their metric clones (Arial,
// Liberation), within a few percent for other proportional fonts.

// The advance widths of characters 32–126.
var (
	dejaVuSans     = [95]uint16{318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, 1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, 603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838}
	dejaVuSansBold = [95]uint16{348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 580, 1000, 774, 762, 734, 830, 683, 683, 821, 837, 372, 372, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771, 724, 725, 457, 365, 457, 838, 500, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665, 343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838}

	helvetica     = [95]uint16{278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584}
	helveticaBold = [95]uint16{278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584}
	times         = [95]uint16{250, 333, 408, 500, 500, 833, 778, 180, 333, 333, 500, 564, 250, 333, 250, 278, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 278, 278, 564, 564, 564, 444, 921, 722, 667, 667, 722, 611, 556, 722, 722, 333, 389, 722, 611, 889, 722, 722, 556, 722, 667, 556, 611, 722, 722, 944, 722, 722, 611, 333, 278, 333, 469, 500, 333, 444, 500, 444, 500, 444, 333, 500, 500, 278, 278, 500, 278, 778, 500, 500, 500, 500, 333, 389, 278, 500, 500, 722, 500, 500, 444, 480, 200, 480, 541}
	timesBold     = [95]uint16{250, 333, 555, 500, 500, 1000, 833, 278, 333, 333, 500, 570, 250, 333, 250, 278, 500, 500, 500, 500, 500, 500, 500, 500, 500, 500, 333, 333, 570, 570, 570, 500, 930, 722, 667, 722, 722, 667, 611, 778, 778, 389, 500, 778, 667, 944, 722, 778, 611, 778, 722, 556, 667, 722, 722, 1000, 722, 722, 667, 333, 278, 333, 581, 500, 333, 500, 556, 444, 556, 444, 333, 500, 556, 278, 333, 556, 278, 833, 556, 500, 556, 556, 444, 389, 333, 556, 500, 722, 500, 500, 444, 394, 220, 394, 520}
)

// textWidth estimates the width in points of text set at size points in a
// font of the CSS family (MuPDF writes e.g. "Times,serif",
// "Arial,sans-serif", "Courier,monospace").
// The font's own name comes first; MuPDF's generic family after the comma
// is a guess (it calls DejaVu Sans "serif").
func textWidth(text string, size float64, family string, bold bool) float64 {
	f := strings.ToLower(family)
	name, generic, _ := strings.Cut(f, ",")
	if strings.Contains(name, "mono") || strings.Contains(name, "courier") || (!strings.Contains(name, "sans") && strings.Contains(generic, "mono")) {
		return float64(len([]rune(text))) * 0.6 * size
	}
	table, other := &helvetica, 556.0
	if bold {
		table = &helveticaBold
	}
	switch {
	case strings.Contains(name, "dejavu") && strings.Contains(name, "sans"):
		table, other = &dejaVuSans, 636
		if bold {
			table = &dejaVuSansBold
		}
	case strings.Contains(name, "sans") || strings.Contains(name, "arial") || strings.Contains(name, "helvetica"):
	case strings.Contains(name, "times") || strings.Contains(name, "serif") || (strings.Contains(generic, "serif") && !strings.Contains(generic, "sans")):
		table, other = &times, 500
		if bold {
			table = &timesBold
		}
	}
	w := 0.0
	for _, r := range text {
		if r >= 32 && r <= 126 {
			w += float64(table[r-32])
		} else {
			w += other
		}
	}
	return w / 1000 * size
}
