//! The aggregator's HLL sketches: `Scratch::build` is aggregator/hll.py's `build_sketches` (one compact Apache
//! DataSketches HLL image per group), byte for byte what its NumPy implementation (aggregator/hll_numpy.py, the
//! reference) writes. aggregator/hll.py documents the format and the modes; per group, its items taken in
//! arrival order:
//! - no (non-ignored) items: the library's 8-byte empty image;
//! - fewer than 8 distinct coupons: LIST, the coupons in order of first arrival;
//! - 8 .. T-1 distinct coupons (T = `promotion_count`): SET, the coupons ascending;
//! - T or more: HLL_4, HLL_6 or HLL_8. The registers at promotion are those of the first T distinct coupons;
//!   from then on, an arrival that raises its register first adds k / (kxq0 + kxq1) to the HIP estimate (which
//!   starts at `HIP_AT_PROMOTION`). kxq0 and kxq1 are exact integers in units of 2^-31 and 2^-63, converted
//!   and combined with the same floating-point operations, in the same order, as the NumPy code, so the HIP
//!   estimate is bit-identical. HLL_4's aux pairs come in slot order.
//!
//! How: the items are counting-sorted by group (arrival order kept); then each group is read once. A group of
//! fewer than T items cannot become an HLL: its coupons are sorted and deduplicated (a SET wants them
//! ascending), or, when fewer than 8 remain, searched linearly in arrival order (a LIST). A larger group finds
//! its distinct coupons with a small open-addressing set up to the T-th, after which only the registers are
//! updated (a repeated coupon never raises a register, so it needs no set).
//!
//! `codes` and `values` are the factorized items of aggregator/hll_format.py's `Coupons`: the distinct coupons are
//! the distinct codes because `values` must be strictly ascending and nonzero (the `Coupons` contract); `build`
//! answers `None` for other values, and the caller runs the NumPy implementation.
//!
//! Nothing here panics on any input; arrays that grow with `n_groups` or the output are allocated fallibly
//! (`Problem::Memory`).

/// Smallest and largest lg_k (log2 of the number of registers) the library accepts.
pub const MIN_LG_K: i64 = 4;
pub const MAX_LG_K: i64 = 21;

// Serialized-format constants (DataSketches HLL family, serial version 1; integers little-endian).
const KEY_BITS: u32 = 26; // a coupon is value << 26 | key; the register slot is the key's low lg_k bits
const FAMILY_HLL: u8 = 7;
const SERIAL_VERSION: u8 = 1;
const FLAG_EMPTY: u8 = 4;
const FLAG_COMPACT: u8 = 8;
const MODE_LIST: u8 = 0;
const MODE_SET: u8 = 1;
const MODE_HLL: u8 = 2;
const LIST_PRE_INTS: u8 = 2;
const SET_PRE_INTS: u8 = 3;
const HLL_PRE_INTS: u8 = 10;
const HLL_HEADER: usize = 40;
const LG_LIST_ARR: u8 = 3; // a LIST holds up to 7 coupons; the 8th distinct one makes it a SET (or an HLL)
const LIST_MAX: usize = 1 << LG_LIST_ARR;
const LG_INIT_SET_ARR: u32 = 5;
const AUX_TOKEN: u8 = 15; // HLL_4 nibble meaning "value - cur_min >= 15, see the aux pairs"

/// The library's HIP estimate when the sketch becomes an HLL, per lg_k from 4 (aggregator/hll_numpy.py
/// `_HIP_AT_PROMOTION`, measured from datasketches 5.2; the hex floats are in the comments).
const HIP_AT_PROMOTION: [f64; 18] = [
    f64::from_bits(0x4020_0000_04aa_aaad), // 4: 0x1.0000004aaaaadp+3
    f64::from_bits(0x4020_0000_04aa_aaad), // 5: 0x1.0000004aaaaadp+3
    f64::from_bits(0x4020_0000_04aa_aaad), // 6: 0x1.0000004aaaaadp+3
    f64::from_bits(0x4020_0000_04aa_aaad), // 7: 0x1.0000004aaaaadp+3
    f64::from_bits(0x4039_0000_1900_001e), // 8: 0x1.900001900001ep+4
    f64::from_bits(0x4048_8000_3100_0073), // 9: 0x1.8800031000073p+5
    f64::from_bits(0x4058_4000_6100_01c2), // 10: 0x1.84000610001c2p+6
    f64::from_bits(0x4068_2000_c100_06f3), // 11: 0x1.82000c10006f3p+7
    f64::from_bits(0x4078_1001_8100_1b9d), // 12: 0x1.8100181001b9dp+8
    f64::from_bits(0x4088_0803_0100_6dde), // 13: 0x1.8080301006ddep+9
    f64::from_bits(0x4098_0406_0101_b6ff), // 14: 0x1.804060101b6ffp+10
    f64::from_bits(0x40a8_020c_0106_dbda), // 15: 0x1.8020c0106dbdap+11
    f64::from_bits(0x40b8_0118_011b_6ffa), // 16: 0x1.80118011b6ffap+12
    f64::from_bits(0x40c8_00b0_016d_600a), // 17: 0x1.800b0016d600ap+13
    f64::from_bits(0x40d8_00a0_02b5_abbf), // 18: 0x1.800a002b5abbfp+14
    f64::from_bits(0x40e8_00e0_07d9_68fd), // 19: 0x1.800e007d968fdp+15
    f64::from_bits(0x40f8_0190_1c6d_8c37), // 20: 0x1.801901c6d8c37p+16
    f64::from_bits(0x4108_0308_6ec3_f653), // 21: 0x1.803086ec3f653p+17
];

const TWO_POW_M31: f64 = f64::from_bits(0x3E00_0000_0000_0000); // 2^-31: the unit of kxq0
const TWO_POW_M63: f64 = f64::from_bits(0x3C00_0000_0000_0000); // 2^-63: the unit of kxq1

/// kxq0 units of a register of value v: 2^(31 - v) for v < 32, else 0 (kxq0 sums 2^-v over those registers).
const KXQ0_UNITS: [u64; 64] = kxq_units(0);
/// kxq1 units of a register of value v: 2^(63 - v) for v >= 32, else 0.
const KXQ1_UNITS: [u64; 64] = kxq_units(32);

const fn kxq_units(from: usize) -> [u64; 64] {
    let mut units = [0; 64];
    let mut v = from;
    while v < from + 32 {
        units[v] = 1 << (from + 31 - v);
        v += 1;
    }
    units
}

/// Why `build` did not answer: invalid arguments (ValueError, worded as aggregator/hll.py words them), or an
/// allocation that failed (MemoryError).
#[derive(Debug, PartialEq, Eq)]
pub enum Problem {
    Invalid(String),
    Memory,
}

/// The images of the groups: group g's is `data[ends[g - 1]..ends[g]]` (from 0 for group 0); that is empty for a
/// group without items, whose image is `empty` (the caller shares one object for them).
#[derive(Default)]
pub struct Images {
    pub data: Vec<u8>,
    pub ends: Vec<usize>,
    pub empty: [u8; 8],
}

impl Images {
    /// Group g's image, `None` for a group without items (or g out of range): its image is `empty`.
    pub fn image(&self, g: usize) -> Option<&[u8]> {
        let start = if g == 0 { 0 } else { *self.ends.get(g - 1)? };
        let image = self.data.get(start..*self.ends.get(g)?)?;
        if image.is_empty() { None } else { Some(image) }
    }
}

/// Everything `build` reads and writes, kept from call to call by the caller (one per thread): reusing the
/// memory saves the page faults of fresh allocations, which cost about as much as sorting the items by group.
#[derive(Default)]
pub struct Scratch {
    /// The arguments: a group code and an item code per item, and the coupon values.
    pub groups: Vec<i64>,
    pub codes: Vec<i64>,
    pub values: Vec<u32>,
    /// The items' coupons, group after group.
    coupons: Vec<u32>,
    images: Images,
    work: Work,
}

impl Scratch {
    /// The memory held, in bytes.
    pub fn held(&self) -> usize {
        let work = &self.work;
        let words = self.values.capacity() + self.coupons.capacity() + work.table.capacity() + work.list.capacity();
        8 * (self.groups.capacity() + self.codes.capacity() + self.images.ends.capacity())
            + 4 * (words + work.aux.capacity())
            + self.images.data.capacity()
            + work.registers.capacity()
    }

    /// One image per group 0..n_groups-1 of the items i with `groups[i]` == g, taken in order: item i is the
    /// coupon `values[codes[i]]`, or ignored when `codes[i]` < 0. `tgt_type` 0, 1, 2 = HLL_4, HLL_6, HLL_8.
    ///
    /// `Ok(None)` when `values` is not strictly ascending and nonzero (the caller then runs the reference).
    /// Errors (in this order): lg_k outside 4..21, tgt_type outside 0..2, different lengths, n_groups < 0, a
    /// group code outside 0..n_groups-1, a non-ignored code outside `values`.
    pub fn build(&mut self, n_groups: i64, lg_k: i64, tgt_type: i64) -> Result<Option<&Images>, Problem> {
        if !(MIN_LG_K..=MAX_LG_K).contains(&lg_k) {
            return Err(invalid(format!("lg_k must be in {MIN_LG_K}..{MAX_LG_K}, got {lg_k}")));
        }
        let Ok(tgt @ 0..=2) = u8::try_from(tgt_type) else {
            return Err(invalid(format!("{tgt_type} is not a valid HllType")));
        };
        let Scratch { groups, codes, values, coupons, images, work } = self;
        if groups.len() != codes.len() {
            return Err(invalid(format!("{} group codes for {} items", groups.len(), codes.len())));
        }
        let Ok(n_groups) = usize::try_from(n_groups) else {
            return Err(invalid(format!("n_groups must be >= 0, got {n_groups}")));
        };
        let canonical = values.first().is_none_or(|&v| v != 0) && values.windows(2).all(|w| w[0] < w[1]);
        if !canonical {
            return Ok(None);
        }
        let lg_k = lg_k as u32;
        by_group(groups, codes, values, n_groups, coupons, &mut images.ends)?;
        // Each group's coupons, then its image: `ends[g]` goes from the end of its coupons to its image's end.
        work.start(lg_k, tgt);
        images.empty = empty_image(lg_k as u8, tgt);
        let data = &mut images.data;
        data.clear();
        let mut start = 0;
        for end in &mut images.ends {
            let items = coupons.get(start..*end).unwrap_or_default();
            start = *end;
            if !items.is_empty() {
                work.image(items, data)?;
            }
            *end = data.len();
        }
        Ok(Some(images))
    }
}

/// T: the number of distinct coupons at which the library's sketch becomes a dense HLL.
pub fn promotion_count(lg_k: u32) -> usize {
    if lg_k < 8 { LIST_MAX } else { 3 * (1 << (lg_k - 5)) + 1 }
}

/// The library's compact image of an empty sketch.
pub fn empty_image(lg_k: u8, tgt: u8) -> [u8; 8] {
    [LIST_PRE_INTS, SERIAL_VERSION, FAMILY_HLL, lg_k, LG_LIST_ARR, FLAG_EMPTY | FLAG_COMPACT, 0, MODE_LIST | (tgt << 2)]
}

fn invalid(message: String) -> Problem {
    Problem::Invalid(message)
}

/// The items' coupons group after group into `coupons` (arrival order within a group; 0 for an ignored item),
/// and the end of each group's run into `ends`. Validates the group codes (all of them, first), then the codes of
/// the non-ignored items.
fn by_group(
    groups: &[i64],
    codes: &[i64],
    values: &[u32],
    n_groups: usize,
    coupons: &mut Vec<u32>,
    ends: &mut Vec<usize>,
) -> Result<(), Problem> {
    ends.clear();
    ends.try_reserve(n_groups).map_err(|_| Problem::Memory)?;
    ends.resize(n_groups, 0);
    for &g in groups {
        let Some(count) = usize::try_from(g).ok().and_then(|g| ends.get_mut(g)) else {
            return Err(invalid(format!("group codes must be in 0..{}", n_groups as i128 - 1)));
        };
        *count += 1;
    }
    let mut total = 0;
    for slot in ends.iter_mut() {
        let count = *slot;
        *slot = total; // the group's start: the scatter below moves it to its end
        total += count;
    }
    coupons.truncate(total); // every element is written below
    coupons.try_reserve(total - coupons.len()).map_err(|_| Problem::Memory)?;
    coupons.resize(total, 0);
    let mut bad_code = false;
    for (&g, &c) in groups.iter().zip(codes) {
        let coupon = match usize::try_from(c) {
            Ok(c) => values.get(c).copied().unwrap_or_else(|| {
                bad_code = true;
                0
            }),
            Err(_) => 0, // ignored
        };
        // g is in 0..n_groups (checked above) and the runs add up to `total`.
        let at = &mut ends[g as usize];
        coupons[*at] = coupon;
        *at += 1;
    }
    if bad_code {
        return Err(invalid("items.codes must index items.values".to_owned()));
    }
    Ok(())
}

fn reserve(out: &mut Vec<u8>, additional: usize) -> Result<(), Problem> {
    out.try_reserve(additional).map_err(|_| Problem::Memory)
}

/// The library's hash-table size (lg) after inserting `count` entries into a table of initial size 2^lg_min:
/// it doubles whenever it is more than 3/4 full (aggregator/hll_numpy.py `_lg_table_size`).
fn lg_table_size(count: usize, lg_min: u32) -> u8 {
    let mut lg = lg_min;
    while lg < 40 && 4 * count as u64 > 3 << lg {
        lg += 1;
    }
    lg as u8
}

/// The library's initial HLL_4 aux table size (lg) for lg_k (aggregator/hll_numpy.py `_lg_aux_init`).
fn lg_aux_init(lg_k: u32) -> u32 {
    const SMALL: [u32; 10] = [2, 2, 2, 3, 3, 3, 4, 4, 5, 5];
    if lg_k < 14 { SMALL.get(lg_k as usize - 4).copied().unwrap_or(2) } else { lg_k - 8 }
}

/// `x` as f64, exactly: kxq sums stay below 2^53 (at most 2^21 registers of 2^31 units each), so the
/// conversion (through i64: one instruction) is exact, as NumPy's int64 to float64 conversion is.
#[allow(clippy::cast_precision_loss)]
fn exact(x: u64) -> f64 {
    x as i64 as f64
}

/// Scratch space reused from group to group.
#[derive(Default)]
struct Work {
    lg_k: u32,
    tgt: u8,
    threshold: usize,
    /// Open-addressing set of coupons (0 = free: coupons are never 0), clean between groups.
    table: Vec<u32>,
    /// The group's distinct coupons: in order of first arrival (the first T of them for an HLL), or ascending.
    list: Vec<u32>,
    registers: Vec<u8>,
    aux: Vec<u32>,
}

impl Work {
    fn start(&mut self, lg_k: u32, tgt: u8) {
        (self.lg_k, self.tgt, self.threshold) = (lg_k, tgt, promotion_count(lg_k));
    }

    /// Appends the image of a group with these coupons (in arrival order, 0 = ignored) to `out`; nothing when
    /// they are all ignored (the group's image is the empty image).
    fn image(&mut self, items: &[u32], out: &mut Vec<u8>) -> Result<(), Problem> {
        if items.len() < LIST_MAX {
            self.first_arrivals(items); // fewer than 8 (and than T): a LIST
        } else if items.len() < self.threshold {
            // Fewer than T distinct: a SET (coupons ascending) unless fewer than 8.
            self.list.clear();
            self.list.extend_from_slice(items);
            self.list.sort_unstable();
            self.list.dedup();
            if self.list.first() == Some(&0) {
                self.list.remove(0); // ignored items
            }
            if self.list.len() >= LIST_MAX {
                return self.coupon_image(out);
            }
            self.first_arrivals(items);
        } else if let Some(at) = self.distinct(items) {
            return self.hll(items.get(at + 1..).unwrap_or_default(), out); // 0 never raises a register
        } else if self.list.len() >= LIST_MAX {
            self.list.sort_unstable();
        }
        if self.list.is_empty() { Ok(()) } else { self.coupon_image(out) }
    }

    /// The distinct coupons (not 0) of `items` in `list`, in order of first arrival, when there are few of them
    /// (a linear search each).
    fn first_arrivals(&mut self, items: &[u32]) {
        self.list.clear();
        for &c in items {
            if c != 0 && !self.list.contains(&c) {
                self.list.push(c);
            }
        }
    }

    /// Collects the distinct coupons (not 0) of `items` in `list`, in order of first arrival, stopping at the T-th:
    /// its index in `items` when there is one (the sketch is an HLL from the next item on).
    fn distinct(&mut self, items: &[u32]) -> Option<usize> {
        self.list.clear();
        let threshold = self.threshold;
        // A table at most half full: 2^lg >= 2 * (the most distinct coupons it will hold).
        let lg = (2 * items.len().min(threshold)).next_power_of_two().trailing_zeros().max(5);
        let size = 1usize << lg;
        if self.table.len() < size {
            self.table.resize(size, 0);
        }
        let table = &mut self.table[..size];
        let mask = size - 1;
        let mut promoted = None;
        for (i, &c) in items.iter().enumerate() {
            if c == 0 {
                continue; // an ignored item
            }
            let mut h = (c.wrapping_mul(0x9E37_79B1) >> (32 - lg)) as usize;
            loop {
                let entry = table[h];
                if entry == c {
                    break;
                }
                if entry == 0 {
                    table[h] = c;
                    self.list.push(c);
                    break;
                }
                h = (h + 1) & mask;
            }
            if self.list.len() == threshold {
                promoted = Some(i);
                break;
            }
        }
        table.fill(0);
        promoted
    }

    /// The LIST (fewer than 8 coupons, in `list`'s order) or SET (`list` ascending) image of the coupons in `list`.
    fn coupon_image(&self, out: &mut Vec<u8>) -> Result<(), Problem> {
        let count = self.list.len();
        let mode = |m: u8| m | (self.tgt << 2);
        let lg_k = self.lg_k as u8;
        if count < LIST_MAX {
            reserve(out, 8 + 4 * count)?;
            let count = count as u8;
            out.extend_from_slice(&[
                LIST_PRE_INTS,
                SERIAL_VERSION,
                FAMILY_HLL,
                lg_k,
                LG_LIST_ARR,
                FLAG_COMPACT,
                count,
                mode(MODE_LIST),
            ]);
        } else {
            reserve(out, 12 + 4 * count)?;
            let lg_arr = lg_table_size(count, LG_INIT_SET_ARR);
            out.extend_from_slice(&[
                SET_PRE_INTS,
                SERIAL_VERSION,
                FAMILY_HLL,
                lg_k,
                lg_arr,
                FLAG_COMPACT,
                0,
                mode(MODE_SET),
            ]);
            out.extend_from_slice(&(count as u32).to_le_bytes());
        }
        out.extend(self.list.iter().flat_map(|c| c.to_le_bytes()));
        Ok(())
    }

    /// The HLL image of a group promoted with the coupons in `list` and then given `rest` (in arrival order).
    fn hll(&mut self, rest: &[u32], out: &mut Vec<u8>) -> Result<(), Problem> {
        let k = 1usize << self.lg_k;
        if self.registers.len() == k {
            self.registers.fill(0);
        } else {
            self.registers = vec![0; k];
        }
        let registers = &mut self.registers[..];
        let mask = (k - 1) as u32;
        // kxq0, kxq1 in units (exact integers), and the registers still 0, kept up to date register by register.
        let (mut kxq0, mut kxq1, mut zeros) = (k as u64 * KXQ0_UNITS[0], 0, k);
        for &c in &self.list {
            let (slot, new) = ((c & mask) as usize, (c >> KEY_BITS) as u8);
            let old = registers[slot];
            if new > old {
                let (old, new) = (usize::from(old), usize::from(new));
                kxq0 = kxq0 + KXQ0_UNITS[new] - KXQ0_UNITS[old];
                kxq1 = kxq1 + KXQ1_UNITS[new] - KXQ1_UNITS[old];
                zeros -= usize::from(old == 0);
                registers[slot] = new as u8;
            }
        }
        let mut hip = HIP_AT_PROMOTION[(self.lg_k - 4) as usize];
        let k_f64 = f64::from(1u32 << self.lg_k);
        for &c in rest {
            let (slot, new) = ((c & mask) as usize, (c >> KEY_BITS) as u8);
            let old = registers[slot];
            if new > old {
                // As NumPy: float(k) / (float64(kxq0) * 2**-31 + float64(kxq1) * 2**-63), added left to right.
                hip += k_f64 / (exact(kxq0) * TWO_POW_M31 + exact(kxq1) * TWO_POW_M63);
                let (old, new) = (usize::from(old), usize::from(new));
                kxq0 = kxq0 + KXQ0_UNITS[new] - KXQ0_UNITS[old];
                kxq1 = kxq1 + KXQ1_UNITS[new] - KXQ1_UNITS[old];
                zeros -= usize::from(old == 0);
                registers[slot] = new as u8;
            }
        }
        self.serialize_hll(hip, (kxq0, kxq1), zeros, out)
    }

    /// Appends the compact image of the registers, given their HIP estimate, kxq0 and kxq1 (units) and how many
    /// are 0.
    fn serialize_hll(&mut self, hip: f64, kxq: (u64, u64), zeros: usize, out: &mut Vec<u8>) -> Result<(), Problem> {
        let registers = &self.registers[..];
        let k = registers.len();
        let (mut lg_arr, mut cur_min, mut at_cur_min) = (0, 0, zeros);
        self.aux.clear();
        if self.tgt == 0 {
            if zeros == 0 {
                cur_min = registers.iter().copied().fold(u8::MAX, u8::min);
                at_cur_min = registers.iter().map(|&r| usize::from(r == cur_min)).sum();
            }
            if registers.iter().copied().fold(0, u8::max) - cur_min >= AUX_TOKEN {
                for (slot, &r) in registers.iter().enumerate() {
                    if r - cur_min >= AUX_TOKEN {
                        self.aux.push((u32::from(r) << KEY_BITS) | slot as u32);
                    }
                }
                lg_arr = lg_table_size(self.aux.len(), lg_aux_init(self.lg_k));
            }
        }
        let body = match self.tgt {
            0 => k / 2,
            1 => 3 * k / 4 + 1,
            _ => k,
        };
        reserve(out, HLL_HEADER + body + 4 * self.aux.len())?;
        out.extend_from_slice(&[
            HLL_PRE_INTS,
            SERIAL_VERSION,
            FAMILY_HLL,
            self.lg_k as u8,
            lg_arr,
            FLAG_COMPACT,
            cur_min,
            MODE_HLL | (self.tgt << 2),
        ]);
        out.extend_from_slice(&hip.to_le_bytes());
        out.extend_from_slice(&(exact(kxq.0) * TWO_POW_M31).to_le_bytes());
        out.extend_from_slice(&(exact(kxq.1) * TWO_POW_M63).to_le_bytes());
        out.extend_from_slice(&(at_cur_min as u32).to_le_bytes());
        out.extend_from_slice(&(self.aux.len() as u32).to_le_bytes());
        match self.tgt {
            0 => {
                let nibble = |r: u8| (r - cur_min).min(AUX_TOKEN);
                out.extend(registers.chunks_exact(2).map(|pair| nibble(pair[0]) | (nibble(pair[1]) << 4)));
                out.extend(self.aux.iter().flat_map(|pair| pair.to_le_bytes()));
            }
            1 => {
                for quad in registers.chunks_exact(4) {
                    let packed = quad.iter().rev().fold(0u32, |acc, &r| (acc << 6) | u32::from(r));
                    out.extend_from_slice(&packed.to_le_bytes()[..3]);
                }
                out.push(0);
            }
            _ => out.extend_from_slice(registers),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(groups: &[i64], codes: &[i64], values: &[u32]) -> Scratch {
        Scratch { groups: groups.to_vec(), codes: codes.to_vec(), values: values.to_vec(), ..Scratch::default() }
    }

    fn build(groups: &[i64], codes: &[i64], values: &[u32], n: i64, lg_k: i64, tgt: i64) -> Result<bool, Problem> {
        scratch(groups, codes, values).build(n, lg_k, tgt).map(|images| images.is_some())
    }

    fn one_group(coupons: &[u32], lg_k: i64, tgt: i64) -> Vec<u8> {
        let mut values = coupons.to_vec();
        values.sort_unstable();
        values.dedup();
        let codes: Vec<i64> = coupons.iter().map(|c| values.binary_search(c).map_or(-1, |i| i as i64)).collect();
        let mut scratch = scratch(&vec![0; codes.len()], &codes, &values);
        let images = scratch.build(1, lg_k, tgt).unwrap().unwrap();
        images.image(0).unwrap_or(&images.empty).to_vec()
    }

    #[test]
    fn constants() {
        assert_eq!((TWO_POW_M31 * 2_147_483_648.0).to_bits(), 1f64.to_bits());
        assert_eq!((TWO_POW_M63 * 9_223_372_036_854_775_808.0).to_bits(), 1f64.to_bits());
        assert_eq!((KXQ0_UNITS[0], KXQ0_UNITS[31], KXQ0_UNITS[32]), (1 << 31, 1, 0));
        assert_eq!((KXQ1_UNITS[31], KXQ1_UNITS[32], KXQ1_UNITS[63]), (0, 1 << 31, 1));
        assert_eq!((promotion_count(4), promotion_count(7), promotion_count(8), promotion_count(12)), (8, 8, 25, 385));
        assert_eq!(promotion_count(21), 196_609);
        assert_eq!(
            (lg_table_size(8, 5), lg_table_size(24, 5), lg_table_size(25, 5), lg_table_size(384, 5)),
            (5, 5, 6, 9)
        );
        assert_eq!((lg_aux_init(4), lg_aux_init(13), lg_aux_init(14), lg_aux_init(21)), (2, 5, 6, 13));
    }

    #[test]
    fn empty_groups_and_ignored_items() {
        let mut scratch = scratch(&[1, 1, 2], &[-1, -5, 0], &[7 << 26 | 3]);
        let images = scratch.build(4, 12, 2).unwrap().unwrap();
        assert_eq!(images.empty, [2, 1, 7, 12, 3, 12, 0, 8]);
        assert_eq!((images.image(0), images.image(1), images.image(3), images.image(4)), (None, None, None, None));
        assert_eq!(images.image(2), Some(&[2, 1, 7, 12, 3, 8, 1, 8, 3, 0, 0, 28][..]));
    }

    #[test]
    fn list_keeps_first_arrivals_in_order() {
        let image = one_group(&[9 << 26 | 5, 1 << 26 | 2, 9 << 26 | 5, 3 << 26 | 1], 12, 0);
        let mut want = vec![2, 1, 7, 12, 3, 8, 3, 0];
        for c in [9u32 << 26 | 5, 1 << 26 | 2, 3 << 26 | 1] {
            want.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(image, want);
    }

    #[test]
    fn set_is_ascending_and_hll_starts_from_the_promotion_estimate() {
        let coupons: Vec<u32> = (1..=40u32).rev().map(|i| (1 << 26) | (i * 7)).collect();
        let image = one_group(&coupons, 12, 1);
        assert_eq!(&image[..12], &[3, 1, 7, 12, 6, 8, 0, 5, 40, 0, 0, 0]);
        assert_eq!(u32::from_le_bytes(image[12..16].try_into().unwrap()), 1 << 26 | 7);
        // lg_k 4: the 8th distinct coupon promotes; nothing after it, so the HIP estimate is the table's.
        let coupons: Vec<u32> = (0..8u32).map(|i| 2 << 26 | i).collect();
        let image = one_group(&coupons, 4, 2);
        assert_eq!(&image[..8], &[10, 1, 7, 4, 0, 8, 0, 10]);
        assert_eq!(image[8..16], HIP_AT_PROMOTION[0].to_le_bytes());
        assert_eq!(image.len(), 40 + 16);
        assert_eq!(&image[40..48], &[2; 8]);
    }

    /// Pseudo-random input: `n` items over `n_groups` groups, coupons from a pool of `pool` (some ignored).
    fn random_input(seed: u64, n: usize, n_groups: i64, pool: usize) -> (Vec<i64>, Vec<i64>, Vec<u32>) {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            state >> 33
        };
        let mut values: Vec<u32> =
            (0..pool).map(|_| (((next() % 40 + 1) << 26) | (next() % (1 << 26))) as u32).collect();
        values.sort_unstable();
        values.dedup();
        let groups = (0..n).map(|_| (next() % n_groups as u64) as i64).collect();
        let codes = (0..n).map(|_| next() % (values.len() as u64 + 3)).map(|c| c as i64 - 3).collect();
        (groups, codes, values)
    }

    #[test]
    fn a_reused_scratch_builds_what_a_fresh_one_builds() {
        let mut reused = Scratch::default();
        for (seed, n, n_groups, pool, lg_k, tgt) in [
            (1, 60_000, 7, 20_000, 12, 0),
            (2, 3_000, 40, 500, 4, 1),
            (3, 90_000, 3, 50_000, 14, 2),
            (4, 10, 2, 5, 21, 0),
        ] {
            let (groups, codes, values) = random_input(seed, n, n_groups, pool);
            let mut fresh = scratch(&groups, &codes, &values);
            let fresh = fresh.build(n_groups, lg_k, tgt).unwrap().unwrap();
            (reused.groups, reused.codes, reused.values) = (groups, codes, values);
            let again = reused.build(n_groups, lg_k, tgt).unwrap().unwrap();
            for g in 0..n_groups as usize {
                assert_eq!(fresh.image(g), again.image(g));
            }
            assert_eq!(fresh.empty, again.empty);
        }
    }

    #[test]
    fn bad_arguments() {
        let bad = |r: Result<bool, Problem>| match r {
            Err(Problem::Invalid(message)) => message,
            _ => String::from("no error"),
        };
        assert_eq!(bad(build(&[], &[], &[], 1, 3, 0)), "lg_k must be in 4..21, got 3");
        assert_eq!(bad(build(&[], &[], &[], 1, 12, 3)), "3 is not a valid HllType");
        assert_eq!(bad(build(&[0], &[], &[], 1, 12, 0)), "1 group codes for 0 items");
        assert_eq!(bad(build(&[], &[], &[], -1, 12, 0)), "n_groups must be >= 0, got -1");
        assert_eq!(bad(build(&[0, 2], &[-1, -1], &[5], 2, 12, 0)), "group codes must be in 0..1");
        assert_eq!(bad(build(&[0], &[0], &[5], 0, 12, 0)), "group codes must be in 0..-1");
        assert_eq!(bad(build(&[0, 0], &[1, 0], &[5], 1, 12, 0)), "items.codes must index items.values");
        assert_eq!(build(&[0], &[0], &[5, 5], 1, 12, 0), Ok(false));
        assert_eq!(build(&[0], &[0], &[0, 5], 1, 12, 0), Ok(false));
        assert!(matches!(build(&[], &[], &[], i64::MAX, 12, 0), Err(Problem::Memory)));
    }
}
