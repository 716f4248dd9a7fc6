!INTERFILE  :=
; A SPECT acquisition written the Interfile 3.3 way, for the tests:
; it holds projections, so dcmforge must refuse it as not an image.

!imaging modality := nucmed

; the data file
name of data file := spect_acquired.s

!version of keys := 3.3
!GENERAL DATA :=
!GENERAL IMAGE DATA :=
!type of data := Tomographic

; patient position, left commented out as many headers do
; patient rotation := supine
; patient orientation := head_in

imagedata byte order := LITTLEENDIAN

number of energy windows:=1
energy window lower level[1]:=126
energy window upper level[1]:=154

!SPECT STUDY (General) :=
!number format := float
!number of bytes per pixel := 4
!number of projections := 60
; degrees covered
!extent of rotation := 360
process status := acquired
!SPECT STUDY (acquired data):=
!direction of rotation := CCW
start angle := 0
orbit := Circular
Radius := 200
!matrix size [1] := 32
!matrix size [2] := 16
!END OF INTERFILE :=
