#include <gtest/gtest.h>
#include "runtime/tensor.h"
TEST(Smoke, Builds) { gc::Tensor t = gc::Tensor::zeros({2, 3}, gc::DType::f32); EXPECT_EQ(t.numel(), 6); }
