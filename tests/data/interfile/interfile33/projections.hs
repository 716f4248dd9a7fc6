!INTERFILE  :=
!imaging modality := nucmed
!version of keys := 3.3
name of data file := projections.s
;data offset in bytes := 0

!GENERAL IMAGE DATA :=
!type of data := Tomographic
imagedata byte order := LITTLEENDIAN
!number format := float
!number of bytes per pixel := 4

!SPECT STUDY (General) := 
patient orientation := head_in
patient rotation :=  supine
;number of dimensions := 2
!matrix size [2] := 16
!scaling factor (mm/pixel) [2] := 4.42
!matrix size [1] := 32
!scaling factor (mm/pixel) [1] := 4.42
!number of projections := 90
!extent of rotation := 360
!process status := acquired

!END OF INTERFILE :=
