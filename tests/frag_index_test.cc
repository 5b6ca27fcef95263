// The kernel's fragmentation formulas (mm/vmstat.c) on hand-computed cases,
// including the edge cases F = 0, B = 0, B = 1 and the kernel's odd printing
// of small negative fragmentation indices.
#include "common/frag_index.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace fraglab::procfs {
namespace {

std::vector<uint64_t> Orders(std::initializer_list<uint64_t> head) {
  std::vector<uint64_t> v(head);
  v.resize(11, 0);
  return v;
}

TEST(FragIndexTest, ContigPageInfoSums) {
  // 3 order-0 blocks, 1 order-1, 2 order-4: F = 3 + 2 + 32 = 37, B = 6.
  const auto nr = Orders({3, 1, 0, 0, 2});
  ContigPageInfo i0 = FillContigPageInfo(nr, 0);
  EXPECT_EQ(i0.free_pages, 37u);
  EXPECT_EQ(i0.free_blocks_total, 6u);
  EXPECT_EQ(i0.free_blocks_suitable, 37u);
  ContigPageInfo i2 = FillContigPageInfo(nr, 2);
  EXPECT_EQ(i2.free_blocks_suitable, 8u);  // two order-4 blocks = 8 order-2 blocks
  ContigPageInfo i5 = FillContigPageInfo(nr, 5);
  EXPECT_EQ(i5.free_blocks_suitable, 0u);
}

TEST(FragIndexTest, SmallZoneByHand) {
  // F = 5 pages in B = 4 blocks (three order-0, one order-1).
  const auto nr = Orders({3, 1});
  EXPECT_EQ(UnusableIndex(nr, 0), 0);
  EXPECT_EQ(UnusableIndex(nr, 1), 600);   // (5 - 1*2) * 1000 / 5
  EXPECT_EQ(UnusableIndex(nr, 2), 1000);
  EXPECT_EQ(FragmentationIndex(nr, 0), -1000);  // request would succeed
  EXPECT_EQ(FragmentationIndex(nr, 1), -1000);
  EXPECT_EQ(FragmentationIndex(nr, 2), 438);    // 1000 - (1000 + 5000/4) / 4 = 1000 - 562
  EXPECT_EQ(FragmentationIndex(nr, 3), 594);    // 1000 - (1000 + 625) / 4 = 1000 - 406
  EXPECT_EQ(FragmentationIndex(nr, 10), 749);   // 1000 - (1000 + 4) / 4 = 1000 - 251
  EXPECT_EQ(ExtfragForOrder(nr, 1), 60);
  EXPECT_EQ(ExtfragForOrder(nr, 2), 100);
  EXPECT_EQ(ExtfragForOrder(nr, 0), 0);
}

TEST(FragIndexTest, NothingFree) {
  const auto nr = Orders({});
  for (unsigned order = 0; order < 11; ++order) {
    EXPECT_EQ(UnusableIndex(nr, order), 1000) << order;    // F = 0
    EXPECT_EQ(FragmentationIndex(nr, order), 0) << order;  // B = 0
    EXPECT_EQ(ExtfragForOrder(nr, order), 0) << order;
  }
  EXPECT_EQ(FormatUnusableIndex(1000), "1.000");
  EXPECT_EQ(FormatFragmentationIndex(0), " 0.000");
}

TEST(FragIndexTest, LoneBlockGivesNegativeIndex) {
  // One free order-7 block: B = 1, F = 128. For larger orders the index is
  // 1000 - (1000 + 1000*128/2^j), negative: the kernel prints " 0.-500".
  const auto nr = Orders({0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(FragmentationIndex(nr, 7), -1000);
  EXPECT_EQ(FragmentationIndex(nr, 8), -500);
  EXPECT_EQ(FragmentationIndex(nr, 9), -250);
  EXPECT_EQ(FragmentationIndex(nr, 10), -125);
  EXPECT_EQ(FormatFragmentationIndex(-500), " 0.-500");
  EXPECT_EQ(FormatFragmentationIndex(-125), " 0.-125");
  EXPECT_EQ(UnusableIndex(nr, 8), 1000);
  EXPECT_EQ(UnusableIndex(nr, 7), 0);
  EXPECT_EQ(ExtfragForOrder(nr, 8), 100);
}

TEST(FragIndexTest, Formatting) {
  EXPECT_EQ(FormatUnusableIndex(0), "0.000");
  EXPECT_EQ(FormatUnusableIndex(66), "0.066");
  EXPECT_EQ(FormatUnusableIndex(955), "0.955");
  EXPECT_EQ(FormatFragmentationIndex(-1000), "-1.000");
  EXPECT_EQ(FormatFragmentationIndex(850), " 0.850");
  EXPECT_EQ(FormatFragmentationIndex(1000), " 1.000");
  // %03d of a small negative remainder keeps the sign inside the width.
  EXPECT_EQ(FormatFragmentationIndex(-5), " 0.-05");
  EXPECT_EQ(FormatFragmentationIndex(-50), " 0.-50");
}

TEST(FragIndexTest, OrderBeyondTableIsZeroLikeTheKernel) {
  const auto nr = Orders({1});
  EXPECT_EQ(FragmentationIndex(nr, 11), 0);
}

TEST(FragIndexTest, IntegerTruncationNotRounding) {
  // F = 3 (three order-0 blocks), order 1: unusable = 3000/3 = 1000; order 0: 0.
  // F = 7 (order 0,1,2 one each), order 1: S = 1 + 2 = 3, (7 - 6) * 1000 / 7 = 142 (not 143).
  const auto nr = Orders({1, 1, 1});
  EXPECT_EQ(UnusableIndex(nr, 1), 142);
  // order 3: 1000 - (1000 + 7000/8=875) / 3 = 1000 - 625 = 375.
  EXPECT_EQ(FragmentationIndex(nr, 3), 375);
  EXPECT_EQ(ExtfragForOrder(nr, 1), 14);
}

TEST(FragIndexTest, LargeCountsDoNotOverflow) {
  // 2^40 free order-10 blocks (an absurd 4 EiB zone) still computes exactly.
  std::vector<uint64_t> nr(11, 0);
  nr[10] = uint64_t{1} << 40;
  nr[0] = 1;
  EXPECT_EQ(UnusableIndex(nr, 10), 0);  // 1 page of 2^50+1 is unusable: rounds down to 0
  EXPECT_EQ(FragmentationIndex(nr, 10), -1000);
}

}  // namespace
}  // namespace fraglab::procfs
