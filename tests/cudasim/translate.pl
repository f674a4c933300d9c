#!/usr/bin/perl
# tests/cudasim/translate.pl SOURCE DISPLAY_NAME: prints SOURCE (a kernels/cuda .cu or
# .h file) as C++ that g++ compiles against cudasim's headers. The one change is
# the launch syntax: every
#     kernel<template args><<<grid, block>>>(arguments);
# becomes
#     ::gcsim::launch(::gcsim::Config(grid, block), "kernel<...>",
#                     [&](auto&... p) { kernel<template args>(p...); }, arguments);
# and every `__shared__ T name[...];` is followed by ::gcsim::fresh_shared(name, ...).
# Line breaks are kept, and a #line directive names the original file, so
# compiler messages point at the real source.
use strict;
use warnings;

my ($source, $display) = @ARGV;
die "usage: translate.pl SOURCE DISPLAY_NAME\n" unless defined $display;
open(my $in, '<', $source) or die "translate.pl: cannot read $source: $!\n";
local $/;
my $text = <$in>;
close($in);

my $count = 0;
$text =~ s{
    ([A-Za-z_]\w*(?:<[^<>;(){}]*>)?)   # kernel name, with its template arguments
    <<<(.*?)>>>                        # launch configuration
    (\s*)                              # layout kept
    (\(((?:[^()]++|(?-2))*)\))         # balanced argument list
}{
    my ($name, $config, $space, $arguments) = ($1, $2, $3, $5);
    $count++;
    my $quoted = $name;
    $quoted =~ s/"/\\"/g;
    my $rest = $arguments =~ /\S/ ? ", $arguments" : "";
    "::gcsim::launch(::gcsim::Config($config), \"$quoted\",$space"
      . "[&](auto&... gcsim_parameter) { $name(gcsim_parameter...); }$rest)";
}gsex;

# Shared arrays start each block as garbage on a GPU; cudasim keeps them in
# function statics, so each declaration is followed (same line) by a call that
# fills the array with 0xff bytes the first time a thread of a block reaches it.
$text =~ s{(__shared__\s+[^;()]+?\s+(\w+)\s*(?:\[[^\]]*\]\s*)+;)}{$1 ::gcsim::fresh_shared($2, sizeof($2));}g;

die "translate.pl: $source still has a launch the translation does not understand\n" if $text =~ /<<</;
print "#line 1 \"$display\"\n$text";
