#include "textflag.h"

// func dotAVX2(a, b *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
loop32:
	CMPQ CX, $32
	JL   loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  loop32
loop8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop8
reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
tail:
	CMPQ CX, $0
	JE   done
	VMOVSS (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  tail
done:
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// Nibble kernels. A row is stride/2 bytes (stride a positive multiple of
// 128) in blocks of 64 bytes for 128 dimensions: byte j of a block holds
// dimension j in its low nibble and dimension 64+j in its high one, so a
// shift and two masks give codes in query order. out[r] = Σ q[i]·u[i], u
// the unsigned nibbles.

// func dotsNibbleAVX2(q *int8, codes *uint8, stride, n int, out *int32)
//
// VPMADDUBSW multiplies 32 unsigned nibbles by 32 signed query bytes and
// adds pairs (at most 2·15·128 = 3840; four such vectors sum to 15360: no
// int16 saturation), VPMADDWD by ones widens to int32.
TEXT ·dotsNibbleAVX2(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ codes+8(FP), DI
	MOVQ stride+16(FP), DX
	MOVQ n+24(FP), R8
	MOVQ out+32(FP), R9
	MOVL $0x0F0F0F0F, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x00010001, AX
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
nrow:
	TESTQ R8, R8
	JZ    nrowsdone
	VPXOR Y0, Y0, Y0
	MOVQ  SI, R10
	MOVQ  DX, CX
ninner:
	VMOVDQU    (DI), Y1   // low: dims 0-31, high: dims 64-95
	VMOVDQU    32(DI), Y4 // low: dims 32-63, high: dims 96-127
	VPSRLW     $4, Y1, Y2
	VPSRLW     $4, Y4, Y5
	VPAND      Y15, Y1, Y1
	VPAND      Y15, Y2, Y2
	VPAND      Y15, Y4, Y4
	VPAND      Y15, Y5, Y5
	VPMADDUBSW (R10), Y1, Y1
	VPMADDUBSW 64(R10), Y2, Y2
	VPMADDUBSW 32(R10), Y4, Y4
	VPMADDUBSW 96(R10), Y5, Y5
	VPADDW     Y2, Y1, Y1
	VPADDW     Y5, Y4, Y4
	VPADDW     Y4, Y1, Y1
	VPMADDWD   Y14, Y1, Y1
	VPADDD     Y1, Y0, Y0
	ADDQ       $64, DI
	ADDQ       $128, R10
	SUBQ       $128, CX
	JNZ        ninner
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (R9)
	ADDQ         $4, R9
	DECQ         R8
	JMP          nrow
nrowsdone:
	VZEROUPPER
	RET

// func dotsNibbleVNNI(q *int8, codes *uint8, stride, n int, out *int32)
//
// AVX-512 VNNI: one VPDPBUSD multiplies 64 unsigned nibbles by 64 signed
// query bytes and adds each group of four into an int32 lane, so a block
// of 128 dimensions is one load, a shift, two masks and two VPDPBUSD.
TEXT ·dotsNibbleVNNI(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ codes+8(FP), DI
	MOVQ stride+16(FP), DX
	MOVQ n+24(FP), R8
	MOVQ out+32(FP), R9
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z15
vrow:
	TESTQ R8, R8
	JZ    vrowsdone
	VPXORD Z0, Z0, Z0
	VPXORD Z3, Z3, Z3
	MOVQ   SI, R10
	MOVQ   DX, CX
vinner:
	VMOVDQU64 (DI), Z1
	VPSRLW    $4, Z1, Z2
	VPANDD    Z15, Z1, Z1
	VPANDD    Z15, Z2, Z2
	VPDPBUSD  (R10), Z1, Z0
	VPDPBUSD  64(R10), Z2, Z3
	ADDQ      $64, DI
	ADDQ      $128, R10
	SUBQ      $128, CX
	JNZ       vinner
	VPADDD        Z3, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4E, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xB1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, (R9)
	ADDQ          $4, R9
	DECQ          R8
	JMP           vrow
vrowsdone:
	VZEROUPPER
	RET
