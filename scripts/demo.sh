#!/usr/bin/env bash
# The calibration and science-pawprint chain on a simulated night, recipe by recipe, as an ESO user runs it:
# each recipe's products SOF feeds the next one. (The chain engine of `vircam pipeline`
# will do this from tags alone; this script shows the recipes themselves.)
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${1:-demo_out}
DATA=$OUT/data
PROD=$OUT/products
mkdir -p "$PROD"

"$BIN/vircam" simulate --out "$DATA" --preset "${PRESET:-tiny}" --seed 1
run() {  # run RECIPE SOF NAME: products into $PROD/NAME, products SOF $PROD/NAME.sof
    "$BIN/vircam-recipe" --log-level warning --overwrite --output-dir "$PROD/$3" \
        --products-sof "$PROD/$3.sof" "$1" "$2"
}
run vircam_dark_combine "$DATA/sof/dark.sof" dark_science
run vircam_dark_combine "$DATA/sof/dark_10_1.sof" dark_twilight
run vircam_linearity_analyse "$DATA/sof/linearity.sof" linearity

table=$(grep MASTER_CHANNEL_TABLE "$PROD/linearity.sof")
cat "$DATA/sof/detector_noise.sof" - > "$PROD/noise_in.sof" <<< "$table"
run vircam_detector_noise "$PROD/noise_in.sof" detector_noise

{ cat "$DATA/sof/twilight_flat.sof" "$PROD/dark_twilight.sof"; echo "$table";
  grep MASTER_BPM "$PROD/linearity.sof"; } > "$PROD/flat_in.sof"
run vircam_twilight_flat_combine "$PROD/flat_in.sof" twilight_flat

# Science pawprints: basic calibration, source masks, sky, final processing.
{ cat "$DATA/sof/science.sof"; grep -h "MASTER_DARK\|MASTER_TWILIGHT_FLAT\|MASTER_CHANNEL_TABLE\|MASTER_BPM" \
    "$PROD/dark_science.sof" "$PROD/linearity.sof" "$PROD/twilight_flat.sof";
  grep -h MASTER_READGAIN_TABLE "$PROD/detector_noise.sof"; } > "$PROD/basic_in.sof"
run vircam_science_basic "$PROD/basic_in.sof" basic
run vircam_source_mask "$PROD/basic.sof" objmask
cat "$PROD/basic.sof" "$PROD/objmask.sof" > "$PROD/sky_in.sof"
run vircam_sky_combine "$PROD/sky_in.sof" sky
{ cat "$PROD/basic.sof" "$PROD/objmask.sof" "$PROD/sky.sof"; grep -h MASTER_CONF "$PROD/twilight_flat.sof"; } \
    > "$PROD/final_in.sof"
run vircam_science_final "$PROD/final_in.sof" final

echo
echo "Science pawprints in $PROD/final: $(grep -c SKYSUB_SCI "$PROD/final.sof") sky-subtracted, with weights"
echo "Master calibrations in $PROD (QC figures: *.png next to each product):"
cat "$PROD"/*.sof | grep " MASTER_" | awk '{print "  " $2 "\t" $1}' | sort -u
